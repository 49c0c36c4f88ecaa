import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SandboxError } from '../errors.js';
import { kernelAtLeast } from '../kernel.js';
import { cgroupParentSetting, warnOnce, type ResourceLimits } from './cgroup.js';
import { sandboxRunHome } from '../home.js';
import { masksFor } from './secrets.js';
import { defaultSizes, type DefaultSizes } from './size-budget.js';

/** How the working directory appears inside the sandbox. */
export type WorkdirMode = 'cow' | 'ro' | 'rw' | 'none';

/** A copy-on-write overlay of one or more host directories. */
export interface OverlayMount {
  /** Host directories, top first; a layer stack is `[child, parent, ...]`. */
  lower: string | readonly string[];
  /** Absolute path inside the sandbox. */
  target: string;
  /**
   * Keep the writable layer on the host (e.g. to commit it as a layer or to
   * keep a failed run): both directories must exist on one filesystem.
   * Default: a private tmpfs that vanishes with the sandbox.
   */
  upper?: { upper: string; work: string };
}

export interface BindMount {
  source: string;
  /** Default: the same path as the source. */
  target?: string;
  readonly?: boolean;
}

export type RlimitName = 'nofile' | 'fsize' | 'cpu' | 'core' | 'nproc' | 'as' | 'data' | 'stack';
export type RlimitValue = number | 'unlimited' | readonly [soft: number | 'unlimited', hard: number | 'unlimited'];

/** Everything a sandbox can be told. All fields are optional. */
export interface SandboxOptions {
  /** Host directory the command starts in (same path inside). Default: process.cwd(). */
  cwd?: string;
  /** How `cwd` is mounted: copy-on-write (default), read-only, read-write or not at all. */
  workdir?: WorkdirMode;
  overlays?: readonly OverlayMount[];
  binds?: readonly BindMount[];
  /** Extra fresh tmpfs mounts (absolute paths inside). /tmp and /dev/shm always are. */
  tmpfs?: readonly string[];
  /** 'none' (default): loopback only. 'host': share the host's network. */
  network?: 'none' | 'host';
  /** Variables to set; `undefined` removes one. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Start from the caller's environment (default true) or from an empty one. */
  inheritEnv?: boolean;
  hostname?: string;
  /** Ids inside. Default: the caller's; for root, 65534 (PostgreSQL refuses uid 0). */
  uid?: number;
  gid?: number;
  /** Size of /tmp, /dev/shm and extra tmpfs mounts: bytes or '512m', '2g'. Default: a quarter of this sandbox's share of the memory budget (see `concurrency`). */
  tmpfsSize?: number | string;
  /** Size of the tmpfs holding the overlays' writable layers. Default: half of this sandbox's share of the memory budget. */
  upperSize?: number | string;
  /**
   * How many sandboxes run at once, for the default sizes: all of them
   * together get half of the host's memory for their tmpfs mounts. Default:
   * the number of cores; the runner, the warm pool and the Vitest pool set it.
   */
  concurrency?: number;
  rlimits?: Partial<Record<RlimitName, RlimitValue>>;
  /** File descriptors passed to the command besides stdio (Node's IPC fd always is). */
  keepFds?: readonly number[];
  /** More paths to hide (relative to the home directory or absolute), besides ~/.ssh, ~/.aws and the other credential stores. */
  mask?: readonly string[];
  /** Credential paths to show after all, e.g. ['.npmrc'] for a test that publishes. */
  allowHome?: readonly string[];
  /** Variables that look like secrets (…TOKEN, …SECRET, …PASSWORD, …API_KEY) are dropped unless named here. */
  passEnv?: readonly string[];
  /** Memory cap of the whole sandbox (bytes or '512m'); needs a delegated cgroup v2 subtree. */
  memory?: number | string;
  /** Most processes and threads the sandbox may hold at once. Default 4096 (a fork bomb stays in its sandbox). */
  pids?: number | 'unlimited';
  /** CPU time share in cores, e.g. 1.5; needs a delegated cgroup v2 subtree. */
  cpus?: number;
  /** The delegated cgroup v2 directory sandboxes are created in; 'self': the one we run in. Default: $SANDBOX_RUN_CGROUP. */
  cgroupParent?: string;
}

/** Options after validation: absolute paths, parsed sizes, defaults filled. */
export interface NormalizedOptions {
  cwd: string;
  workdir: WorkdirMode;
  overlays: { lowers: string[]; target: string; upper?: { upper: string; work: string } }[];
  binds: { source: string; target: string; readonly: boolean }[];
  tmpfs: string[];
  network: 'none' | 'host';
  env: Record<string, string | undefined>;
  inheritEnv: boolean;
  hostname: string;
  uid?: number;
  gid?: number;
  /** Sizes the caller set; where unset, `defaultSizes` apply. */
  tmpfsSize?: number;
  upperSize?: number;
  defaultSizes: DefaultSizes;
  rlimits: [RlimitName, string, string][];
  keepFds: number[];
  masks: string[];
  /**
   * Host directories hidden behind an empty tmpfs before any other mount
   * but the working directory: sandbox-run's own home (the store, other
   * sandboxes' sockets, kept runs) and a runtime dir outside /run.
   */
  hiddenDirs: string[];
  passEnv: string[];
  /** Limits enforced through a per-sandbox cgroup under `cgroupParent`. */
  limits: ResourceLimits;
  cgroupParent?: string;
}

/** podman's default is 2048; test runners with worker threads need more headroom. */
export const DEFAULT_PIDS_LIMIT = 4096;

const RLIMITS: readonly RlimitName[] = ['nofile', 'fsize', 'cpu', 'core', 'nproc', 'as', 'data', 'stack'];
const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

/** Parses a size such as 1048576, '64m' or '2G' into bytes. */
export function parseSize(value: number | string, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const match = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(String(value).trim());
  const bytes = match ? Number(match[1]) * (SIZE_UNITS[match[2]!.toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) bad(`${what}: expected a size such as 512m or 2g, got '${value}'`);
  return bytes;
}

function sandboxPath(path: string, what: string): string {
  if (!isAbsolute(path)) bad(`${what} '${path}' must be an absolute path inside the sandbox`);
  if (path.split('/').some((part) => part === '.' || part === '..'))
    bad(`${what} '${path}' must not contain '.' or '..'`);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function hostDir(path: string, cwd: string, what: string): string {
  const absolute = resolve(cwd, path);
  const st = statSync(absolute, { throwIfNoEntry: false });
  if (!st) bad(`${what} '${path}' does not exist`);
  if (!st.isDirectory()) bad(`${what} '${path}' is not a directory`);
  return absolute;
}

function hostPath(path: string, cwd: string, what: string): string {
  const absolute = resolve(cwd, path);
  if (!statSync(absolute, { throwIfNoEntry: false })) bad(`${what} '${path}' does not exist`);
  return absolute;
}

function rlimitText(value: number | 'unlimited', name: string): string {
  if (value === 'unlimited') return value;
  if (!Number.isSafeInteger(value) || value < 0) bad(`rlimit ${name}: expected a non-negative integer or 'unlimited'`);
  return String(value);
}

function idOption(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32 - 1) bad(`${what}: expected an id from 0 to 4294967294`);
  return value;
}

/**
 * Limits go to the sandbox's cgroup when one is delegated. Without one the
 * pids limit falls back to RLIMIT_NPROC (which the kernel does not apply to
 * host root), and memory and CPU caps cannot be enforced: say so.
 */
function resourceLimits(options: SandboxOptions): { limits: ResourceLimits; cgroupParent?: string; nproc?: number } {
  const pids = options.pids ?? DEFAULT_PIDS_LIMIT;
  if (pids !== 'unlimited' && (!Number.isSafeInteger(pids) || pids < 1)) bad(`pids: expected a positive number of processes or 'unlimited', got '${pids}'`);
  if (options.cpus !== undefined && (typeof options.cpus !== 'number' || !(options.cpus > 0) || options.cpus > 4096)) bad(`cpus: expected a number of cores such as 1.5, got '${options.cpus}'`);
  const limits: ResourceLimits = {
    ...(options.memory !== undefined ? { memory: parseSize(options.memory, 'memory') } : {}),
    ...(pids !== 'unlimited' ? { pids } : {}),
    ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
  };
  // RLIMIT_NPROC backs the pids limit wherever it is per sandbox (Linux 5.14
  // counts it per user namespace), with or without a cgroup (whose pids
  // controller the host may not offer).
  const nproc = limits.pids !== undefined && options.rlimits?.nproc === undefined && kernelAtLeast(5, 14) ? limits.pids : undefined;
  const fallback = nproc !== undefined ? { nproc } : {};
  const cgroupParent = cgroupParentSetting(options.cgroupParent);
  if (cgroupParent) return { limits: { ...limits, ...(options.pids === undefined ? { pidsIsDefault: true } : {}) }, cgroupParent, ...fallback };
  for (const key of ['memory', 'cpus'] as const)
    if (limits[key] !== undefined) warnOnce(`the ${key} limit is not enforced: no delegated cgroup v2 subtree (set SANDBOX_RUN_CGROUP; see sandbox-run doctor)`);
  if (options.pids !== undefined && process.getuid?.() === 0) warnOnce('the pids limit does not bind root without a delegated cgroup v2 subtree (RLIMIT_NPROC exempts uid 0)');
  return { limits: {}, ...fallback };
}

/** Whether `path` is `dir` or below it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * What sandboxes must not see of the host besides credentials: sandbox-run's
 * home (where other sandboxes' PostgreSQL sockets live) and the caller's
 * runtime directory when it is not under /run, which the helper replaces
 * anyway. Under /tmp they are hidden already.
 */
function hiddenDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [sandboxRunHome(env), ...(env.XDG_RUNTIME_DIR && isAbsolute(env.XDG_RUNTIME_DIR) ? [env.XDG_RUNTIME_DIR] : [])];
  return [...new Set(dirs.map((dir) => resolve(dir)))].filter(
    (dir) => !['/tmp', '/run', '/var/run'].some((fresh) => within(dir, fresh)) && statSync(dir, { throwIfNoEntry: false })?.isDirectory(),
  );
}

/**
 * With the host network, DNS needs the file /etc/resolv.conf points to;
 * under /run (systemd-resolved, NetworkManager) the sandbox's fresh /run
 * would hide it: bind it back, read-only.
 */
function resolverBinds(): NormalizedOptions['binds'] {
  let real: string;
  try {
    real = realpathSync('/etc/resolv.conf');
  } catch {
    return [];
  }
  return within(real, '/run') || within(real, '/var/run') ? [{ source: real, target: real, readonly: true }] : [];
}

/** Validates and completes options; the one place where defaults live. */
export function normalizeOptions(options: SandboxOptions = {}): NormalizedOptions {
  const cwd = hostDir(options.cwd ?? process.cwd(), process.cwd(), 'working directory');
  const workdir = options.workdir ?? 'cow';
  if (!['cow', 'ro', 'rw', 'none'].includes(workdir)) bad(`workdir: expected cow, ro, rw or none, got '${workdir}'`);
  const network = options.network ?? 'none';
  if (network !== 'none' && network !== 'host') bad(`network: expected none or host, got '${network}'`);

  const overlays = (options.overlays ?? []).map((overlay) => {
    const lowerList = typeof overlay.lower === 'string' ? [overlay.lower] : [...overlay.lower];
    if (lowerList.length === 0) bad(`overlay on ${overlay.target}: needs at least one lower directory`);
    const lowers = lowerList.map((lower) => hostDir(lower, cwd, 'overlay source'));
    const upper = overlay.upper && {
      upper: hostDir(overlay.upper.upper, cwd, 'overlay upper'),
      work: hostDir(overlay.upper.work, cwd, 'overlay work'),
    };
    return { lowers, target: sandboxPath(overlay.target, 'overlay target'), ...(upper ? { upper } : {}) };
  });
  const binds = (options.binds ?? []).map((bind) => {
    const source = hostPath(bind.source, cwd, 'bind source');
    return { source, target: sandboxPath(bind.target ?? source, 'bind target'), readonly: bind.readonly ?? false };
  });
  if (network === 'host') binds.push(...resolverBinds());
  // Core dumps of crashing tests fill disks and may hold secrets: off unless asked.
  const { limits, cgroupParent, nproc } = resourceLimits(options);
  const rlimits = Object.entries({ core: 0, ...(nproc !== undefined ? { nproc } : {}), ...options.rlimits }).map(([name, value]): [RlimitName, string, string] => {
    if (!RLIMITS.includes(name as RlimitName)) bad(`rlimit '${name}': expected one of ${RLIMITS.join(', ')}`);
    const [soft, hard] = Array.isArray(value) ? value : [value, value];
    return [name as RlimitName, rlimitText(soft, name), rlimitText(hard, name)];
  });
  const keepFds = [...(options.keepFds ?? [])];
  for (const fd of keepFds) if (!Number.isInteger(fd) || fd < 3) bad(`keepFds: ${fd} is not a file descriptor above stdio`);

  const concurrency = options.concurrency;
  if (concurrency !== undefined && (!Number.isSafeInteger(concurrency) || concurrency < 1)) bad(`concurrency: expected a positive number of sandboxes, got '${concurrency}'`);
  const uid = idOption(options.uid, 'uid');
  const gid = idOption(options.gid, 'gid');
  return {
    cwd,
    workdir,
    overlays,
    binds,
    tmpfs: (options.tmpfs ?? []).map((path) => sandboxPath(path, 'tmpfs target')),
    network,
    env: { ...options.env },
    inheritEnv: options.inheritEnv ?? true,
    hostname: options.hostname ?? 'sandbox',
    ...(uid !== undefined ? { uid } : {}),
    ...(gid !== undefined ? { gid } : {}),
    ...(options.tmpfsSize !== undefined ? { tmpfsSize: parseSize(options.tmpfsSize, 'tmpfsSize') } : {}),
    ...(options.upperSize !== undefined ? { upperSize: parseSize(options.upperSize, 'upperSize') } : {}),
    defaultSizes: defaultSizes(concurrency),
    rlimits,
    keepFds,
    masks: masksFor(options.mask ?? [], options.allowHome ?? []),
    hiddenDirs: hiddenDirs(),
    passEnv: [...(options.passEnv ?? [])],
    limits,
    ...(cgroupParent ? { cgroupParent } : {}),
  };
}
