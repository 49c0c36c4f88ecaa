import type { ResultPromise } from 'execa';
import { helperArgs, sandboxEnv } from '../helper/args.js';
import { helperPath } from '../helper/locate.js';
import { createSandboxCgroup, type SandboxCgroup } from './cgroup.js';
import { withCopies } from './copy-fallback.js';
import { normalizeOptions, type NormalizedOptions, type SandboxOptions } from './options.js';
import { startHelper, type ProcessOptions } from './process.js';
import { upperPlacement, withDiskUppers } from './upper-placement.js';

/** A helper started for a new sandbox, with what it holds on the host. */
export interface Launched {
  subprocess: ResultPromise;
  /** The options the sandbox runs with (the copy fallback and disk uppers rewrite its overlays). */
  options: NormalizedOptions;
  cgroup?: SandboxCgroup;
}

/**
 * Normalises the options, makes what the sandbox needs on the host (private
 * copies where overlayfs is missing, writable layers on disk where tmpfs
 * cannot hold them, its cgroup) and starts the helper; a failure on the way
 * removes what was made. The copies and disk uppers go when the helper
 * exits; the cgroup is the caller's to release after the sandbox's last
 * process, which for a live sandbox may be a joined one.
 */
export function launchSandbox(options: SandboxOptions, command: readonly string[] | null, processOptions: ProcessOptions, extra: { infoFd?: number } = {}): Launched {
  const normalized = normalizeOptions(options);
  // Only copy-on-write mounts without an upper of their own depend on where writable layers can live.
  const placement = normalized.workdir === 'cow' || normalized.overlays.some((overlay) => !overlay.upper) ? upperPlacement() : undefined;
  const hostDirs =
    placement?.mode === 'copy' ? withCopies(normalized, placement.reason) : placement?.mode === 'disk' ? withDiskUppers(normalized) : undefined;
  const effective = hostDirs?.options ?? normalized;
  let cgroup: SandboxCgroup | undefined;
  let subprocess: ResultPromise;
  try {
    cgroup = effective.cgroupParent ? createSandboxCgroup(effective.cgroupParent, effective.limits) : undefined;
    const args = helperArgs(effective, command, { ...extra, ...(cgroup ? { cgroup: cgroup.leaf } : {}) });
    subprocess = startHelper(helperPath(), args, sandboxEnv(effective), processOptions);
  } catch (error) {
    hostDirs?.cleanup();
    void cgroup?.release();
    throw error;
  }
  if (hostDirs) void subprocess.then(hostDirs.cleanup, hostDirs.cleanup);
  return { subprocess, options: effective, ...(cgroup ? { cgroup } : {}) };
}
