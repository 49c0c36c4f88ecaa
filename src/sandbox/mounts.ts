import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SandboxError } from '../errors.js';
import { sandboxRunHome } from '../home.js';
import type { NormalizedOptions, SandboxOptions } from './options.js';

/*
 * What the sandbox's filesystem is made of, apart from what the helper
 * always mounts: the working directory, overlays, binds, tmpfs mounts and
 * the host directories hidden from every sandbox. Validated here; turned
 * into helper arguments in helper-argv.ts.
 */

export type MountOptions = Pick<NormalizedOptions, 'cwd' | 'workdir' | 'workdirLayer' | 'overlays' | 'binds' | 'tmpfs' | 'hiddenDirs'>;

/** Fresh tmpfs mounts inside every sandbox (the helper makes them): whatever the host has there is hidden. */
const PRIVATE_DIRS = ['/tmp', '/dev/shm', '/run'];

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

/** Whether `path` is `dir` or below it. */
export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * What to mount for the working directory. Under /tmp (CI checkouts often
 * are) the sandbox's fresh /tmp would hide the directory's parents, and with
 * them the project's node_modules: mount the whole top-level directory below
 * /tmp instead, e.g. /tmp/checkout for /tmp/checkout/packages/app.
 */
export function workdirMountPoint(cwd: string): string {
  for (const dir of PRIVATE_DIRS) {
    if (cwd.startsWith(`${dir}/`)) return `${dir}/${cwd.slice(dir.length + 1).split('/')[0]}`;
  }
  return cwd;
}

/** Whether a fresh tmpfs inside the sandbox hides this host path. */
export function isPrivate(path: string): boolean {
  return PRIVATE_DIRS.some((dir) => path.startsWith(`${dir}/`));
}

/**
 * Where processes start: the working directory, which every workdir mode
 * shows (with 'none', read-only); '/' for /tmp itself, which is fresh. On
 * an image root with workdir 'none' nothing of the host is mounted: the
 * image's WorkingDir, as `docker run` starts.
 */
export function startDirectory(options: Pick<NormalizedOptions, 'cwd'> & Partial<Pick<NormalizedOptions, 'workdir' | 'imageRoot'>>): string {
  if (options.imageRoot && options.workdir === 'none') return options.imageRoot.workingDir;
  return PRIVATE_DIRS.includes(options.cwd) ? '/' : options.cwd;
}

export function sandboxPath(path: string, what: string): string {
  if (!isAbsolute(path)) bad(`${what} '${path}' must be an absolute path inside the sandbox`);
  if (path.split('/').some((part) => part === '.' || part === '..')) bad(`${what} '${path}' must not contain '.' or '..'`);
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

function hostLayer(layer: { upper: string; work: string }, cwd: string, what: string): { upper: string; work: string } {
  return { upper: hostDir(layer.upper, cwd, `${what} upper`), work: hostDir(layer.work, cwd, `${what} work`) };
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
 * Whether a host path is out of a sandbox's sight: under the directories it
 * gets fresh (/tmp, /dev/shm, /run) or under the hidden host dirs. What a
 * sandbox must still see there (a preloaded library in a checkout under
 * /tmp) has to be bound in.
 */
export function hiddenInSandbox(path: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const real = resolve(path);
  return isPrivate(real) || hiddenDirs(env).some((dir) => within(real, dir));
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

/** Validates the mount options: host paths exist (resolved against the working directory), targets are clean absolute paths. */
export function normalizeMounts(options: SandboxOptions, network: 'none' | 'host'): MountOptions {
  const cwd = hostDir(options.cwd ?? process.cwd(), process.cwd(), 'working directory');
  const workdir = options.workdir ?? 'cow';
  if (!['cow', 'ro', 'rw', 'none'].includes(workdir)) bad(`workdir: expected cow, ro, rw or none, got '${workdir}'`);
  if (options.workdirLayer && workdir !== 'cow') bad(`workdirLayer: needs workdir 'cow', got '${workdir}'`);
  const overlays = (options.overlays ?? []).map((overlay) => {
    const lowerList = typeof overlay.lower === 'string' ? [overlay.lower] : [...overlay.lower];
    if (lowerList.length === 0) bad(`overlay on ${overlay.target}: needs at least one lower directory`);
    const lowers = lowerList.map((lower) => hostDir(lower, cwd, 'overlay source'));
    const upper = overlay.upper && hostLayer(overlay.upper, cwd, 'overlay');
    const onDisk = !upper && overlay.upperOnDisk ? { upperOnDisk: true as const } : {};
    return { lowers, target: sandboxPath(overlay.target, 'overlay target'), ...(upper ? { upper } : onDisk) };
  });
  const binds = (options.binds ?? []).map((bind) => {
    const source = hostPath(bind.source, cwd, 'bind source');
    return { source, target: sandboxPath(bind.target ?? source, 'bind target'), readonly: bind.readonly ?? false };
  });
  if (network === 'host') binds.push(...resolverBinds());
  return {
    cwd,
    workdir,
    ...(options.workdirLayer ? { workdirLayer: hostLayer(options.workdirLayer, cwd, 'workdirLayer') } : {}),
    overlays,
    binds,
    tmpfs: (options.tmpfs ?? []).map((path) => sandboxPath(path, 'tmpfs target')),
    hiddenDirs: hiddenDirs(),
  };
}
