import type { ResultPromise } from 'execa';
import { SandboxError } from '../errors.js';
import { helperPath } from '../helper/locate.js';
import { type CgroupPlan, createSandboxCgroup, planSandboxCgroup, type SandboxCgroup } from './cgroup.js';
import { type HostDirs, planCopies } from './copy-fallback.js';
import { sandboxEnv } from './env.js';
import { helperArgs } from './helper-argv.js';
import { type NormalizedOptions, normalizeOptions, type SandboxOptions } from './options.js';
import { type ProcessOptions, startHelper } from './process.js';
import { planDiskUppers, upperPlacement } from './upper-placement.js';

/*
 * Starting a sandbox is two steps: a plan (options -> what to make on the
 * host and the exact helper command) and its execution. `sandbox-run
 * --print-helper-args` prints the plan's command, which is what runs.
 */

/** Everything a new sandbox needs, decided but not yet done. */
export interface LaunchPlan {
  /** The options the sandbox runs with (the copy fallback and disk uppers rewrite its mounts). */
  options: NormalizedOptions;
  /** Private copies or writable layers on disk, made before the helper starts and removed when it exits. */
  hostDirs?: HostDirs;
  cgroup?: CgroupPlan;
  helper: string;
  argv: string[];
  env: Record<string, string | undefined>;
}

/** A helper started for a new sandbox, with what it holds on the host. */
export interface Launched {
  subprocess: ResultPromise;
  options: NormalizedOptions;
  cgroup?: SandboxCgroup;
}

/**
 * Decides how the sandbox is made here: where its writable layers go (tmpfs,
 * disk, or copies, as this machine's probe says), its cgroup, and the
 * helper's arguments and environment. Touches nothing on the host.
 */
export function planLaunch(options: SandboxOptions, command: readonly string[] | null, extra: { infoFd?: number } = {}): LaunchPlan {
  const normalized = normalizeOptions(options);
  // Only copy-on-write mounts without an upper of their own depend on where writable layers can live.
  const needsPlacement =
    (normalized.workdir === 'cow' && !normalized.workdirLayer) ||
    normalized.overlays.some((overlay) => !overlay.upper) ||
    (normalized.imageRoot !== undefined && !normalized.imageRoot.upper);
  const placement = needsPlacement ? upperPlacement() : undefined;
  // A private copy of a whole image per sandbox is not offered: the root needs a real overlay.
  if (placement?.mode === 'copy' && normalized.imageRoot)
    throw new SandboxError('SETUP_FAILED', `--image needs a copy-on-write overlay, and none works here (${placement.reason}); run 'sandbox-run doctor'`);
  // On tmpfs, overlays that ask for a disk upper (reflink copy-up, see src/layers/reflink.ts) still get one.
  const rewritten =
    placement?.mode === 'copy'
      ? planCopies(normalized, placement.reason)
      : placement?.mode === 'disk'
        ? planDiskUppers(normalized)
        : normalized.overlays.some((overlay) => overlay.upperOnDisk)
          ? planDiskUppers(normalized, process.env, 'upperOnDisk')
          : undefined;
  const effective = rewritten?.options ?? normalized;
  const cgroup = effective.cgroupParent ? planSandboxCgroup(effective.cgroupParent, effective.limits) : undefined;
  return {
    options: effective,
    ...(rewritten ? { hostDirs: rewritten.hostDirs } : {}),
    ...(cgroup ? { cgroup } : {}),
    helper: helperPath(),
    argv: helperArgs(effective, command, { ...extra, ...(cgroup ? { cgroup: cgroup.leaf } : {}) }),
    env: sandboxEnv(effective),
  };
}

/**
 * Makes what the plan needs on the host and starts the helper; a failure on
 * the way removes what was made. The host dirs go when the helper exits;
 * the cgroup is the caller's to release after the sandbox's last process,
 * which for a live sandbox may be a joined one.
 */
export function startLaunch(plan: LaunchPlan, processOptions: ProcessOptions): Launched {
  let cgroup: SandboxCgroup | undefined;
  let subprocess: ResultPromise;
  try {
    plan.hostDirs?.make();
    cgroup = plan.cgroup ? createSandboxCgroup(plan.cgroup) : undefined;
    subprocess = startHelper(plan.helper, plan.argv, plan.env, processOptions);
  } catch (error) {
    plan.hostDirs?.remove();
    void cgroup?.release();
    throw error;
  }
  const { hostDirs } = plan;
  if (hostDirs) void subprocess.then(hostDirs.remove, hostDirs.remove);
  return { subprocess, options: plan.options, ...(cgroup ? { cgroup } : {}) };
}

/** Plans and starts a sandbox. */
export function launchSandbox(
  options: SandboxOptions,
  command: readonly string[] | null,
  processOptions: ProcessOptions,
  extra: { infoFd?: number } = {},
): Launched {
  return startLaunch(planLaunch(options, command, extra), processOptions);
}
