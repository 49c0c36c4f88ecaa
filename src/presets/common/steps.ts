import { SandboxError } from '../../errors.js';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** Lines of a failed step's output kept in its error. */
const TAIL_LINES = 15;

export interface StepOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Run chrooted into the image mounted there (a server's own tools from an image). */
  root?: string | undefined;
}

/**
 * Runs one build step in the sandbox; a non-zero exit fails the build with
 * one line naming the step and the end of its output. Resolves its stdout.
 */
export async function runStep(sb: Sandbox, preset: string, what: string, argv: readonly string[], options: StepOptions = {}): Promise<string> {
  const [file, ...args] = argv;
  const result = await sb.exec(file!, args, {
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }),
    ...(options.env ? { env: options.env } : {}),
    ...(options.root ? { root: options.root } : {}),
    all: true,
  });
  if (result.exitCode !== 0) {
    const tail = (result.all ?? '').trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
    throw new SandboxError('SETUP_FAILED', `${preset} preset: ${what} failed (exit ${result.exitCode}):\n${tail}`);
  }
  return result.stdout ?? '';
}
