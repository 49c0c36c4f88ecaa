/**
 * Exit codes of sandbox-run itself, distinct from the command's own codes
 * (docker and podman use the same three).
 */
export const ExitCode = {
  /** Bad command-line usage: unknown option, malformed value. */
  usage: 2,
  /** The sandbox could not be set up (namespaces, mounts, bad paths). */
  setup: 125,
  /** The command exists but cannot be executed. */
  cannotExecute: 126,
  /** The command was not found inside the sandbox. */
  notFound: 127,
} as const;

export type SandboxErrorCode =
  | 'BAD_OPTIONS'
  | 'HELPER_MISSING'
  | 'USERNS_UNAVAILABLE'
  | 'SETUP_FAILED'
  | 'SANDBOX_EXITED'
  | 'SERVICE_FAILED'
  | 'ABORTED'
  /** A layer in the store no longer matches what was committed: never mounted. */
  | 'CORRUPT_LAYER'
  /** The layer store's filesystem is full (ENOSPC/EDQUOT); nothing partial is kept. */
  | 'DISK_FULL';

/** Every failure of sandbox-run itself (not of the command) is one of these. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    /** `log`: a failed service's whole log, read before its sandbox went away. */
    readonly details: { command?: readonly string[]; stderr?: string; exitCode?: number; log?: { service: string; text: string } } = {},
  ) {
    super(message);
  }
}

/** A one-line reason from the helper's stderr ("sandbox-run: ..."). */
export function helperReason(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.startsWith('sandbox-run: '));
  return (lines.at(-1) ?? stderr.trim().split('\n').at(-1) ?? '').replace(/^sandbox-run: /, '');
}

/** Turns a helper setup failure (exit 125) into a typed error. */
export function setupError(stderr: string, command?: readonly string[]): SandboxError {
  const reason = helperReason(stderr) || 'the sandbox could not be set up';
  const code = /user namespace/.test(reason) ? 'USERNS_UNAVAILABLE' : 'SETUP_FAILED';
  return new SandboxError(code, reason, { stderr, exitCode: ExitCode.setup, ...(command ? { command } : {}) });
}
