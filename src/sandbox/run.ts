import type { ResultPromise } from 'execa';
import { helperArgs, sandboxEnv } from '../helper/args.js';
import { helperPath } from '../helper/locate.js';
import { copyMode, withCopies } from './copy-fallback.js';
import { normalizeOptions, type SandboxOptions } from './options.js';
import { startHelper, toSandboxResult, type ProcessOptions, type SandboxResult } from './process.js';

/**
 * Starts one command in a fresh sandbox and returns execa's subprocess, for
 * callers that stream output or forward signals. The sandbox ends with it.
 * Throws a {@link SandboxError} synchronously for invalid options.
 */
export function spawn(file: string, args: readonly string[] = [], options: SandboxOptions & ProcessOptions = {}): ResultPromise {
  const normalized = normalizeOptions(options);
  const copies = copyMode() ? withCopies(normalized) : undefined;
  const effective = copies?.options ?? normalized;
  const subprocess = startHelper(helperPath(), helperArgs(effective, [file, ...args]), sandboxEnv(effective), options);
  if (copies) void subprocess.then(copies.cleanup, copies.cleanup);
  return subprocess;
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
  return toSandboxResult([file, ...args], await spawn(file, args, options));
}
