import type { ResultPromise } from 'execa';
import { helperArgs, sandboxEnv } from '../helper/args.js';
import { helperPath } from '../helper/locate.js';
import { createSandboxCgroup, type SandboxCgroup } from './cgroup.js';
import { copyMode, withCopies } from './copy-fallback.js';
import { normalizeOptions, type NormalizedOptions, type SandboxOptions } from './options.js';
import { startHelper, type ProcessOptions } from './process.js';

/** A helper started for a new sandbox, with what it holds on the host. */
export interface Launched {
  subprocess: ResultPromise;
  /** The options the sandbox runs with (the copy fallback rewrites overlays into binds). */
  options: NormalizedOptions;
  cgroup?: SandboxCgroup;
}

/**
 * Normalises the options, makes what the sandbox needs on the host (private
 * copies where overlayfs is missing, its cgroup) and starts the helper; a
 * failure on the way removes what was made. The copies go when the helper
 * exits; the cgroup is the caller's to release after the sandbox's last
 * process, which for a live sandbox may be a joined one.
 */
export function launchSandbox(options: SandboxOptions, command: readonly string[] | null, processOptions: ProcessOptions, extra: { infoFd?: number } = {}): Launched {
  const normalized = normalizeOptions(options);
  const copies = copyMode() ? withCopies(normalized) : undefined;
  const effective = copies?.options ?? normalized;
  let cgroup: SandboxCgroup | undefined;
  let subprocess: ResultPromise;
  try {
    cgroup = effective.cgroupParent ? createSandboxCgroup(effective.cgroupParent, effective.limits) : undefined;
    const args = helperArgs(effective, command, { ...extra, ...(cgroup ? { cgroup: cgroup.leaf } : {}) });
    subprocess = startHelper(helperPath(), args, sandboxEnv(effective), processOptions);
  } catch (error) {
    copies?.cleanup();
    void cgroup?.release();
    throw error;
  }
  if (copies) void subprocess.then(copies.cleanup, copies.cleanup);
  return { subprocess, options: effective, ...(cgroup ? { cgroup } : {}) };
}
