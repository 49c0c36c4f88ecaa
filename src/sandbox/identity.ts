import { SandboxError } from '../errors.js';
import type { NormalizedOptions, SandboxOptions } from './options.js';

/** Who the command is inside and what it holds: ids, hostname, network, file descriptors. */
export type IdentityOptions = Pick<NormalizedOptions, 'uid' | 'gid' | 'hostname' | 'network' | 'keepFds'>;

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

function idOption(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32 - 1) bad(`${what}: expected an id from 0 to 4294967294`);
  return value;
}

export function normalizeIdentity(options: SandboxOptions): IdentityOptions {
  const network = options.network ?? 'none';
  if (network !== 'none' && network !== 'host') bad(`network: expected none or host, got '${network}'`);
  const uid = idOption(options.uid, 'uid');
  const gid = idOption(options.gid, 'gid');
  const keepFds = [...(options.keepFds ?? [])];
  for (const fd of keepFds) if (!Number.isInteger(fd) || fd < 3) bad(`keepFds: ${fd} is not a file descriptor above stdio`);
  return {
    ...(uid !== undefined ? { uid } : {}),
    ...(gid !== undefined ? { gid } : {}),
    hostname: options.hostname ?? 'sandbox',
    network,
    keepFds,
  };
}
