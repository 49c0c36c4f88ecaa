import { SandboxError } from '../errors.js';
import { kernelAtLeast } from '../kernel.js';
import { cgroupParentSetting, type ResourceLimits, warnOnce } from './cgroup.js';
import { RLIMIT_NAMES } from './option-table.js';
import type { NormalizedOptions, RlimitName, SandboxOptions } from './options.js';
import { parseSize } from './size.js';
import { defaultSizes } from './size-budget.js';

/*
 * What a sandbox may consume: tmpfs sizes (with the default budget), rlimits,
 * and the limits a per-sandbox cgroup holds (memory, pids, CPU).
 */

export type LimitOptions = Pick<NormalizedOptions, 'tmpfsSize' | 'upperSize' | 'defaultSizes' | 'rlimits' | 'limits' | 'cgroupParent'>;

/** podman's default is 2048; test runners with worker threads need more headroom. */
export const DEFAULT_PIDS_LIMIT = 4096;

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

function rlimitText(value: number | 'unlimited', name: string): string {
  if (value === 'unlimited') return value;
  if (!Number.isSafeInteger(value) || value < 0) bad(`rlimit ${name}: expected a non-negative integer or 'unlimited'`);
  return String(value);
}

/**
 * Limits go to the sandbox's cgroup when one is delegated. Without one the
 * pids limit falls back to RLIMIT_NPROC (which the kernel does not apply to
 * host root), and memory and CPU caps cannot be enforced: say so.
 */
function resourceLimits(options: SandboxOptions): { limits: ResourceLimits; cgroupParent?: string; nproc?: number } {
  const pids = options.pids ?? DEFAULT_PIDS_LIMIT;
  if (pids !== 'unlimited' && (!Number.isSafeInteger(pids) || pids < 1)) bad(`pids: expected a positive number of processes or 'unlimited', got '${pids}'`);
  if (options.cpus !== undefined && (typeof options.cpus !== 'number' || !(options.cpus > 0) || options.cpus > 4096))
    bad(`cpus: expected a number of cores such as 1.5, got '${options.cpus}'`);
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
    if (limits[key] !== undefined)
      warnOnce(`the ${key} limit is not enforced: no delegated cgroup v2 subtree (set SANDBOX_RUN_CGROUP; see sandbox-run doctor)`);
  if (options.pids !== undefined && process.getuid?.() === 0)
    warnOnce('the pids limit does not bind root without a delegated cgroup v2 subtree (RLIMIT_NPROC exempts uid 0)');
  return { limits: {}, ...fallback };
}

/** Validates sizes and limits and fills their defaults. */
export function normalizeLimits(options: SandboxOptions): LimitOptions {
  const concurrency = options.concurrency;
  if (concurrency !== undefined && (!Number.isSafeInteger(concurrency) || concurrency < 1))
    bad(`concurrency: expected a positive number of sandboxes, got '${concurrency}'`);
  const { limits, cgroupParent, nproc } = resourceLimits(options);
  // Core dumps of crashing tests fill disks and may hold secrets: off unless asked.
  const rlimits = Object.entries({ core: 0, ...(nproc !== undefined ? { nproc } : {}), ...options.rlimits }).map(
    ([name, value]): [RlimitName, string, string] => {
      if (!(RLIMIT_NAMES as readonly string[]).includes(name)) bad(`rlimit '${name}': expected one of ${RLIMIT_NAMES.join(', ')}`);
      const [soft, hard] = Array.isArray(value) ? value : [value, value];
      return [name as RlimitName, rlimitText(soft, name), rlimitText(hard, name)];
    },
  );
  return {
    ...(options.tmpfsSize !== undefined ? { tmpfsSize: parseSize(options.tmpfsSize, 'tmpfsSize') } : {}),
    ...(options.upperSize !== undefined ? { upperSize: parseSize(options.upperSize, 'upperSize') } : {}),
    defaultSizes: defaultSizes(concurrency),
    rlimits,
    limits,
    ...(cgroupParent ? { cgroupParent } : {}),
  };
}
