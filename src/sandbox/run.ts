import type { ResultPromise } from 'execa';
import type { CgroupReport } from './cgroup.js';
import { launchSandbox } from './launch.js';
import type { SandboxOptions } from './options.js';
import { type ProcessOptions, type SandboxResult, toSandboxResult } from './process.js';

/** What each spawned sandbox's cgroup recorded, once it is gone (see {@link sandboxReport}). */
const reports = new WeakMap<ResultPromise, Promise<CgroupReport>>();

/**
 * Starts one command in a fresh sandbox and returns execa's subprocess, for
 * callers that stream output or forward signals. The sandbox ends with it.
 * Throws a {@link SandboxError} synchronously for invalid options.
 */
export function spawn(file: string, args: readonly string[] = [], options: SandboxOptions & ProcessOptions = {}): ResultPromise {
  const { subprocess, cgroup } = launchSandbox(options, [file, ...args], options);
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
export async function run(file: string, args: readonly string[] = [], options: SandboxOptions & ProcessOptions = {}): Promise<SandboxResult> {
  const subprocess = spawn(file, args, options);
  const result = toSandboxResult([file, ...args], await subprocess);
  const { oomKills } = await sandboxReport(subprocess);
  return oomKills > 0 ? { ...result, oomKilled: true } : result;
}
