import { SandboxError } from '../errors.js';
import type { BindMount, OverlayMount, RlimitName, RlimitValue, SandboxOptions, WorkdirMode } from '../sandbox/options.js';

/** The sandbox flags shared by every command that starts sandboxes. */
export interface SandboxFlags {
  overlay?: string[];
  bind?: string[];
  roBind?: string[];
  tmpfs?: string[];
  env?: string[];
  unsetEnv?: string[];
  cleanEnv?: boolean;
  network?: string;
  workdir?: string;
  cwd?: string;
  hostname?: string;
  uid?: number;
  gid?: number;
  tmpfsSize?: string;
  upperSize?: string;
  rlimit?: string[];
  memory?: string;
  pids?: string;
  cpus?: string;
  cgroupParent?: string;
  mask?: string[];
  allowHome?: string[];
  passEnv?: string[];
}

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

/** 'SRC:DST' or, where allowed, 'SRC' (same path inside). */
function splitPair(value: string, flag: string, targetOptional: boolean): [string, string | undefined] {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) {
    if (targetOptional && value) return [value, undefined];
    bad(`--${flag} '${value}': expected SRC:DST`);
  }
  const target = value.slice(colon + 1);
  if (!target) bad(`--${flag} '${value}': expected SRC:DST`);
  return [value.slice(0, colon), target];
}

function parseRlimit(value: string): [RlimitName, RlimitValue] {
  const match = /^([a-z]+)=(\d+|unlimited)(?::(\d+|unlimited))?$/.exec(value);
  if (!match) bad(`--rlimit '${value}': expected NAME=SOFT[:HARD], e.g. nofile=1024 or core=0`);
  const number = (text: string) => (text === 'unlimited' ? 'unlimited' : Number(text));
  const soft = number(match[2]!);
  return [match[1] as RlimitName, match[3] ? [soft, number(match[3])] : soft];
}

function parsePids(value: string): number | 'unlimited' {
  if (value === 'unlimited') return value;
  if (!/^[1-9]\d*$/.test(value)) bad(`--pids '${value}': expected a number of processes such as 256, or unlimited`);
  return Number(value);
}

function parseCpus(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || !(Number(value) > 0)) bad(`--cpus '${value}': expected a number of cores such as 1.5`);
  return Number(value);
}

/** Turns CLI flags into library options. Pure; validation of paths happens in normalizeOptions. */
export function optionsFromFlags(flags: SandboxFlags): SandboxOptions {
  const overlays: OverlayMount[] = (flags.overlay ?? []).map((value) => {
    const [lowers, target] = splitPair(value, 'overlay', false);
    // Stacked lowers are given top first, separated by '+': --overlay child+parent:/data
    return { lower: lowers.split('+'), target: target! };
  });
  const binds: BindMount[] = [
    ...(flags.bind ?? []).map((value) => ({ value, readonly: false, flag: 'bind' })),
    ...(flags.roBind ?? []).map((value) => ({ value, readonly: true, flag: 'ro-bind' })),
  ].map(({ value, readonly, flag }) => {
    const [source, target] = splitPair(value, flag, true);
    return { source, readonly, ...(target ? { target } : {}) };
  });
  const env: Record<string, string | undefined> = {};
  for (const pair of flags.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) bad(`--env '${pair}': expected NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  for (const name of flags.unsetEnv ?? []) env[name] = undefined;
  const rlimits = Object.fromEntries((flags.rlimit ?? []).map(parseRlimit));

  return {
    overlays,
    binds,
    tmpfs: flags.tmpfs ?? [],
    env,
    ...(flags.cleanEnv ? { inheritEnv: false } : {}),
    rlimits,
    ...(flags.mask?.length ? { mask: flags.mask } : {}),
    ...(flags.allowHome?.length ? { allowHome: flags.allowHome } : {}),
    ...(flags.passEnv?.length ? { passEnv: flags.passEnv } : {}),
    ...(flags.network !== undefined ? { network: flags.network as 'none' | 'host' } : {}),
    ...(flags.workdir !== undefined ? { workdir: flags.workdir as WorkdirMode } : {}),
    ...(flags.cwd !== undefined ? { cwd: flags.cwd } : {}),
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    ...(flags.uid !== undefined ? { uid: flags.uid } : {}),
    ...(flags.gid !== undefined ? { gid: flags.gid } : {}),
    ...(flags.tmpfsSize !== undefined ? { tmpfsSize: flags.tmpfsSize } : {}),
    ...(flags.upperSize !== undefined ? { upperSize: flags.upperSize } : {}),
    ...(flags.memory !== undefined ? { memory: flags.memory } : {}),
    ...(flags.pids !== undefined ? { pids: parsePids(flags.pids) } : {}),
    ...(flags.cpus !== undefined ? { cpus: parseCpus(flags.cpus) } : {}),
    ...(flags.cgroupParent !== undefined ? { cgroupParent: flags.cgroupParent } : {}),
  };
}
