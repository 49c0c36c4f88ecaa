import type { NormalizedOptions } from '../sandbox/options.js';
import { inheritedEnv } from '../sandbox/secrets.js';

/** What a process joining a live sandbox may set for itself. */
export interface JoinOptions {
  cwd: string;
  rlimits?: NormalizedOptions['rlimits'];
  keepFds?: readonly number[];
}

function processArgs(cwd: string, rlimits: NormalizedOptions['rlimits'], keepFds: readonly number[]): string[] {
  const args = ['--chdir', cwd];
  for (const [name, soft, hard] of rlimits) args.push('--rlimit', name, soft, hard);
  for (const fd of keepFds) args.push('--keep-fd', String(fd));
  return args;
}

/** Fresh tmpfs mounts inside every sandbox (the helper makes them): whatever the host has there is hidden. */
const PRIVATE_DIRS = ['/tmp', '/dev/shm', '/run'];

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

/**
 * Where processes start: the working directory, which every workdir mode
 * shows (with 'none', read-only); '/' for /tmp itself, which is fresh.
 */
export function startDirectory(options: NormalizedOptions): string {
  return PRIVATE_DIRS.includes(options.cwd) ? '/' : options.cwd;
}

/** Whether a fresh tmpfs inside the sandbox hides this host path. */
function isPrivate(path: string): boolean {
  return PRIVATE_DIRS.some((dir) => path.startsWith(`${dir}/`));
}

/**
 * The helper's argument list for a new sandbox. Pure: the same options give
 * the same list, which is what makes a sandbox easy to audit and to replay
 * by hand (`sandbox-run --print-helper-args`).
 *
 * `command` null starts an idle sandbox that lives until it is signalled
 * (processes are then started in it with {@link joinArgs}).
 */
export function helperArgs(
  options: NormalizedOptions,
  command: readonly string[] | null,
  extra: { infoFd?: number; cgroup?: string } = {},
): string[] {
  const args: string[] = [];
  if (options.uid !== undefined) args.push('--uid', String(options.uid));
  if (options.gid !== undefined) args.push('--gid', String(options.gid));
  if (options.network === 'host') args.push('--share-net');
  args.push('--hostname', options.hostname);
  args.push('--tmpfs-size', String(options.tmpfsSize ?? options.defaultSizes.tmpfs));
  args.push('--upper-size', String(options.upperSize ?? options.defaultSizes.upper));

  // sandbox-run's home and the like go right after the working directory,
  // so that no sandbox sees another's sockets, and before everything else,
  // so that the sandbox's own binds below them (its socket dir) land on
  // top. A working directory inside one of them is mounted on top of it.
  const hidden = (dirs: readonly string[]) => dirs.forEach((dir) => args.push('--mask', dir));
  const hiddenAbove = options.hiddenDirs.filter((dir) => options.cwd === dir || options.cwd.startsWith(`${dir}/`));
  hidden(hiddenAbove);

  // The working directory first, so that mounts below it land on top of it.
  const workdir = workdirMountPoint(options.cwd);
  if (options.workdir === 'cow') args.push('--overlay', workdir, workdir);
  if (options.workdir === 'ro') args.push('--ro-bind', workdir, workdir);
  if (options.workdir === 'rw') args.push('--bind', workdir, workdir);
  // 'none' shows the directory as the host root shows everything: read-only.
  // Under /tmp or a hidden dir it would be gone, so it is bound back read-only.
  if (options.workdir === 'none' && (isPrivate(options.cwd) || hiddenAbove.length > 0)) args.push('--ro-bind', workdir, workdir);
  hidden(options.hiddenDirs.filter((dir) => !hiddenAbove.includes(dir)));

  for (const overlay of options.overlays) {
    const lowers = overlay.lowers.join(':');
    if (overlay.upper) args.push('--overlay-rw', overlay.upper.upper, overlay.upper.work, lowers, overlay.target);
    else args.push('--overlay', lowers, overlay.target);
  }
  for (const bind of options.binds) args.push(bind.readonly ? '--ro-bind' : '--bind', bind.source, bind.target);
  for (const target of options.tmpfs) args.push('--tmpfs', target);
  // Credentials last, so no other mount uncovers them.
  for (const mask of options.masks) args.push('--mask', mask);
  if (extra.infoFd !== undefined) args.push('--info-fd', String(extra.infoFd));
  if (extra.cgroup !== undefined) args.push('--cgroup', extra.cgroup);

  args.push(...processArgs(startDirectory(options), options.rlimits, options.keepFds));
  args.push('--');
  if (command) args.push(...command);
  return args;
}

/** The helper's argument list to run `command` inside the live sandbox whose init is `pid`. */
export function joinArgs(pid: number, options: JoinOptions, command: readonly string[], extra: { infoFd?: number; cgroup?: string } = {}): string[] {
  const args = ['--join', String(pid)];
  if (extra.infoFd !== undefined) args.push('--info-fd', String(extra.infoFd));
  // Joined processes are born in the sandbox's cgroup too, under its limits.
  if (extra.cgroup !== undefined) args.push('--cgroup', extra.cgroup);
  args.push(...processArgs(options.cwd, options.rlimits ?? [], options.keepFds ?? []), '--', ...command);
  return args;
}

/** The environment a sandboxed process starts with. */
export function sandboxEnv(
  options: Pick<NormalizedOptions, 'env' | 'inheritEnv' | 'passEnv'>,
  more: Readonly<Record<string, string | undefined>> = {},
): Record<string, string | undefined> {
  // Inherited variables that look like credentials stay outside unless named;
  // variables set explicitly for the sandbox are the caller's choice.
  const base = options.inheritEnv ? inheritedEnv(process.env, options.passEnv) : {};
  const env: Record<string, string | undefined> = { ...base, ...options.env, ...more, SANDBOX_RUN: '1' };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return env;
}
