import type { ResultPromise } from 'execa';
import { helperArgs, sandboxEnv } from '../helper/args.js';
import { helperPath } from '../helper/locate.js';
import { createSandboxCgroup, type CgroupReport } from './cgroup.js';
import { copyMode, withCopies } from './copy-fallback.js';
import { normalizeOptions, type SandboxOptions } from './options.js';
import { startHelper, toSandboxResult, type ProcessOptions, type SandboxResult } from './process.js';

/** What each spawned sandbox's cgroup recorded, once it is gone (see {@link sandboxReport}). */
const reports = new WeakMap<ResultPromise, Promise<CgroupReport>>();

/**
 * Starts one command in a fresh sandbox and returns execa's subprocess, for
 * callers that stream output or forward signals. The sandbox ends with it.
 * Throws a {@link SandboxError} synchronously for invalid options.
 */
export function spawn(file: string, args: readonly string[] = [], options: SandboxOptions & ProcessOptions = {}): ResultPromise {
  const normalized = normalizeOptions(options);
  const copies = copyMode() ? withCopies(normalized) : undefined;
  const effective = copies?.options ?? normalized;
  const cgroup = effective.cgroupParent ? createSandboxCgroup(effective.cgroupParent, effective.limits) : undefined;
  let subprocess: ResultPromise;
  try {
    const argv = helperArgs(effective, [file, ...args], cgroup ? { cgroup: cgroup.leaf } : {});
    subprocess = startHelper(helperPath(), argv, sandboxEnv(effective), options);
  } catch (error) {
    void cgroup?.release();
    throw error;
  }
  if (copies) void subprocess.then(copies.cleanup, copies.cleanup);
  const ended = () => cgroup?.release() ?? { oomKills: 0 };
  reports.set(subprocess, subprocess.then(ended, ended));
  return subprocess;
}

/** Resolves when a sandbox from {@link spawn} is gone: whether the OOM killer ended something in it. */
export function sandboxReport(subprocess: ResultPromise): Promise<CgroupReport> {
  return reports.get(subprocess) ?? Promise.resolve({ oomKills: 0 });
}

/**
 * Runs one command in a fresh sandbox and resolves when it has ended and the
 * sandbox is gone. Rejects with a {@link SandboxError} only when the sandbox
 * itself could not be set up; the command's failures are in the result.
 *
 * ```ts
 * const { exitCode, stdout } = await run('ls', ['-la'], { workdir: 'ro' });
 * ```
 */
export async function run(
  file: string,
  args: readonly string[] = [],
  options: SandboxOptions & ProcessOptions = {},
): Promise<SandboxResult> {
  const subprocess = spawn(file, args, options);
  const result = toSandboxResult([file, ...args], await subprocess);
  const { oomKills } = await sandboxReport(subprocess);
  return oomKills > 0 ? { ...result, oomKilled: true } : result;
}
