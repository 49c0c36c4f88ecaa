import { isPrivate, startDirectory, workdirMountPoint } from './mounts.js';
import { HELPER_PHASES, type HelperPhase } from './option-table.js';
import type { NormalizedOptions } from './options.js';

/*
 * Normalised options -> the helper's argument list, one builder per phase of
 * option-table.ts's HELPER_PHASES, concatenated in that order. Pure: the
 * same options give the same list, which is what makes a sandbox easy to
 * audit and to replay by hand (`sandbox-run --print-helper-args`).
 */

/** What the launch adds: where the helper reports, the cgroup it starts in. */
export interface LaunchArgs {
  infoFd?: number;
  cgroup?: string;
}

function processArgs(cwd: string, rlimits: NormalizedOptions['rlimits'], keepFds: readonly number[]): string[] {
  const args = ['--chdir', cwd];
  for (const [name, soft, hard] of rlimits) args.push('--rlimit', name, soft, hard);
  for (const fd of keepFds) args.push('--keep-fd', String(fd));
  return args;
}

/**
 * The working directory, with the hidden host dirs (sandbox-run's home, a
 * runtime dir) right after it, so that no sandbox sees another's sockets,
 * and before everything else, so that the sandbox's own binds below them
 * (its socket dir) land on top. A working directory inside a hidden dir is
 * mounted on top of it instead.
 */
function workdirArgs(options: NormalizedOptions): string[] {
  const args: string[] = [];
  const hide = (dirs: readonly string[]) => dirs.forEach((dir) => args.push('--mask', dir));
  const above = options.hiddenDirs.filter((dir) => options.cwd === dir || options.cwd.startsWith(`${dir}/`));
  hide(above);
  const point = workdirMountPoint(options.cwd);
  if (options.workdir === 'cow' && options.workdirLayer) args.push('--overlay-rw', options.workdirLayer.upper, options.workdirLayer.work, point, point);
  else if (options.workdir === 'cow') args.push('--overlay', point, point);
  if (options.workdir === 'ro') args.push('--ro-bind', point, point);
  if (options.workdir === 'rw') args.push('--bind', point, point);
  // 'none' shows the directory as the host root shows everything: read-only.
  // Under /tmp or a hidden dir it would be gone, so it is bound back read-only.
  // On an image root, 'none' shows nothing of the host at all.
  if (options.workdir === 'none' && !options.imageRoot && (isPrivate(options.cwd) || above.length > 0)) args.push('--ro-bind', point, point);
  hide(options.hiddenDirs.filter((dir) => !above.includes(dir)));
  return args;
}

const PHASES: Record<HelperPhase, (options: NormalizedOptions) => string[]> = {
  identity: (o) => [
    ...(o.uid !== undefined ? ['--uid', String(o.uid)] : []),
    ...(o.gid !== undefined ? ['--gid', String(o.gid)] : []),
    ...(o.network === 'host' ? ['--share-net'] : []),
    '--hostname',
    o.hostname,
  ],
  sizes: (o) => ['--tmpfs-size', String(o.tmpfsSize ?? o.defaultSizes.tmpfs), '--upper-size', String(o.upperSize ?? o.defaultSizes.upper)],
  // The image's layers as the root, or (nothing to say) the host's, read-only.
  root: (o) => {
    if (!o.imageRoot) return [];
    const lowers = o.imageRoot.lowers.join(':');
    return o.imageRoot.upper ? ['--image-root-rw', o.imageRoot.upper.upper, o.imageRoot.upper.work, lowers] : ['--image-root', lowers];
  },
  workdir: workdirArgs,
  overlays: (o) =>
    o.overlays.flatMap((overlay) => {
      const lowers = overlay.lowers.join(':');
      return overlay.upper ? ['--overlay-rw', overlay.upper.upper, overlay.upper.work, lowers, overlay.target] : ['--overlay', lowers, overlay.target];
    }),
  binds: (o) => [
    ...o.binds.flatMap((bind) => [bind.readonly ? '--ro-bind' : '--bind', bind.source, bind.target]),
    ...o.insideBinds.flatMap((bind) => ['--bind-inside', bind.source, bind.target]),
  ],
  tmpfs: (o) => o.tmpfs.flatMap((target) => ['--tmpfs', target]),
  // Credentials last, so no other mount uncovers them.
  masks: (o) => o.masks.flatMap((mask) => ['--mask', mask]),
  process: (o) => processArgs(startDirectory(o), o.rlimits, o.keepFds),
};

/**
 * The helper's argument list for a new sandbox. `command` null starts an
 * idle sandbox that lives until it is signalled (processes are then started
 * in it with {@link joinArgs}).
 */
export function helperArgs(options: NormalizedOptions, command: readonly string[] | null, launch: LaunchArgs = {}): string[] {
  const args: string[] = [];
  for (const phase of HELPER_PHASES) {
    if (phase === 'process') {
      if (launch.infoFd !== undefined) args.push('--info-fd', String(launch.infoFd));
      if (launch.cgroup !== undefined) args.push('--cgroup', launch.cgroup);
    }
    args.push(...PHASES[phase](options));
  }
  args.push('--');
  if (command) args.push(...command);
  return args;
}

/** What a process joining a live sandbox may set for itself. */
export interface JoinOptions {
  cwd: string;
  /** Its root: an image mounted in the sandbox (`cwd` is then inside it). */
  chroot?: string;
  rlimits?: NormalizedOptions['rlimits'];
  keepFds?: readonly number[];
}

/** The helper's argument list to run `command` inside the live sandbox whose init is `pid`. */
export function joinArgs(pid: number, options: JoinOptions, command: readonly string[], launch: LaunchArgs = {}): string[] {
  const args = ['--join', String(pid)];
  if (launch.infoFd !== undefined) args.push('--info-fd', String(launch.infoFd));
  // Joined processes are born in the sandbox's cgroup too, under its limits.
  if (launch.cgroup !== undefined) args.push('--cgroup', launch.cgroup);
  if (options.chroot !== undefined) args.push('--chroot', options.chroot);
  args.push(...processArgs(options.cwd, options.rlimits ?? [], options.keepFds ?? []), '--', ...command);
  return args;
}
