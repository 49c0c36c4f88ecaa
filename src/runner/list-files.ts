import type { SandboxOptions } from '../sandbox/options.js';
import { run } from '../sandbox/run.js';
import { listCommand, parseListing } from './runner-files.js';
import type { Detection } from './test-command.js';

/**
 * Asks the test runner which files it would run, in a sandbox like the
 * tests' own (its config is the project's code). The timed split needs the
 * current list: files added since the timings were taken must run too.
 * Undefined when the runner cannot say (then the split stays count-based).
 */
export async function listTestFiles(detection: Detection, sandbox: SandboxOptions, signal: AbortSignal): Promise<string[] | undefined> {
  const cwd = sandbox.cwd ?? process.cwd();
  const [program, ...args] = listCommand(detection, cwd);
  const done = await run(program!, args, { concurrency: 1, ...sandbox, stdin: 'ignore', cancelSignal: signal, timeout: 120_000 }).catch(() => undefined);
  if (done?.exitCode !== 0 || typeof done.stdout !== 'string') return undefined;
  return parseListing(detection.runner, done.stdout, cwd);
}
