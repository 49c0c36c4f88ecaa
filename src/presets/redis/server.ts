import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { basename, delimiter, dirname, join } from 'node:path';
import { SandboxError } from '../../errors.js';
import { findInImage, type PresetImage } from '../common/image.js';

/** The server binary and its client, and what `--version` says (part of the cache key). */
export interface RedisBinaries {
  kind: 'redis' | 'valkey';
  server: string;
  cli: string;
  version: string;
  /** Where the image is mounted when they are an image's: every process of the server runs chrooted there. */
  root?: string;
}

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** PATH, then the usual install places (a CI shell's PATH may lack sbin or /usr/local/bin). */
function onPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/bin', '/usr/bin', '/usr/sbin', '/usr/local/sbin'];
  return dirs.map((dir) => join(dir, name)).find(executable);
}

/** Finds redis-server or valkey-server and its -cli, or says how to install them. */
export function findRedisBinaries(server?: 'redis' | 'valkey', bin?: string): RedisBinaries {
  let path = bin;
  if (path !== undefined && !executable(path)) throw new SandboxError('SETUP_FAILED', `redis preset: bin ${path} is not an executable file`);
  const kinds = server ? [server] : (['redis', 'valkey'] as const);
  path ??= kinds.map((kind) => onPath(`${kind}-server`)).find(Boolean);
  if (!path) {
    const wanted = server ? `${server}-server` : 'redis-server or valkey-server';
    throw new SandboxError(
      'SETUP_FAILED',
      `redis preset: ${wanted} not found: install it (apt-get install redis-server; valkey: apt-get install valkey-server on Debian 13+/Ubuntu 24.10+, ` +
        'dnf install valkey), set bin, or run it from an image (image: "redis:7")',
    );
  }
  const kind = server ?? (basename(path).startsWith('valkey') ? 'valkey' : 'redis');
  const cliName = `${kind}-cli`;
  const cli = [join(dirname(path), cliName)].find(executable) ?? onPath(cliName);
  if (!cli) throw new SandboxError('SETUP_FAILED', `redis preset: ${cliName} not found beside ${path} or on PATH; install it (apt-get install redis-tools)`);
  const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
  return { kind, server: path, cli, version };
}

/** redis-server or valkey-server and its -cli on the image's PATH; the image's digest stands for the version. */
export function findRedisBinariesInImage(image: PresetImage, server?: 'redis' | 'valkey'): RedisBinaries {
  const kinds = server ? [server] : (['redis', 'valkey'] as const);
  for (const kind of kinds) {
    const path = findInImage(image, [`${kind}-server`]);
    if (!path) continue;
    const cli = findInImage(image, [`${kind}-cli`]);
    if (!cli) throw new SandboxError('SETUP_FAILED', `redis preset: image ${image.ref} has ${path} but no ${kind}-cli on its PATH`);
    return { kind, server: path, cli, version: `image ${image.ref} ${image.digest}`, root: image.at };
  }
  throw new SandboxError(
    'SETUP_FAILED',
    `redis preset: image ${image.ref} has no ${kinds.map((k) => `${k}-server`).join(' or ')} on its PATH; use a Redis or Valkey image`,
  );
}
