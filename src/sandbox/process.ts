import { constants } from 'node:os';
import { type Options as ExecaOptions, execa, type Result, type ResultPromise } from 'execa';
import { ExitCode, setupError } from '../errors.js';

/**
 * The execa options that concern how the helper process is run and read,
 * and nothing else: `uid`, `gid`, `cwd` and the rest of SandboxOptions are
 * the sandbox's business (execa would setuid the helper itself).
 */
const PROCESS_OPTION_KEYS = [
  'stdin',
  'stdout',
  'stderr',
  'stdio',
  'input',
  'timeout',
  'cancelSignal',
  'killSignal',
  'forceKillAfterDelay',
  'buffer',
  'all',
  'encoding',
  'ipc',
  'serialization',
  'maxBuffer',
  'stripFinalNewline',
  'lines',
  'verbose',
] as const satisfies readonly (keyof ExecaOptions)[];

/** Options for one process in a sandbox, passed through to execa. */
export type ProcessOptions = Pick<ExecaOptions, (typeof PROCESS_OPTION_KEYS)[number]> & {
  /** Variables for this process only; `undefined` removes one. */
  env?: Readonly<Record<string, string | undefined>>;
};

/** How a sandboxed command ended. */
export interface SandboxResult {
  command: readonly string[];
  /** The command's exit code; 128+N when signal N killed it (shell convention). */
  exitCode: number;
  /** The signal that killed the command, when `exitCode` says one did. */
  signal?: NodeJS.Signals;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, with `all: true`. */
  all?: string;
  durationMs: number;
  /** True when `timeout` or `cancelSignal` stopped it. */
  timedOut: boolean;
  cancelled: boolean;
  /** The kernel's OOM killer ended a process because of the sandbox's memory limit (with a delegated cgroup). */
  oomKilled?: boolean;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.join('\n');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return '';
}

/** Starts the helper with execa; errors are turned into results, not thrown. */
export function startHelper(helper: string, args: readonly string[], env: Record<string, string | undefined>, options: ProcessOptions = {}): ResultPromise {
  const picked = Object.fromEntries(PROCESS_OPTION_KEYS.filter((key) => options[key] !== undefined).map((key) => [key, options[key]])) as ExecaOptions;
  return execa(helper, args, { ...picked, env, extendEnv: false, reject: false, windowsHide: true });
}

/**
 * Interprets a finished helper: a setup failure (exit 125 with the helper's
 * one-line reason) throws; everything else is the command's own result.
 */
export function toSandboxResult(command: readonly string[], result: Result): SandboxResult {
  const stderr = text(result.stderr);
  const exitCode = result.exitCode ?? (result.signal ? 128 + (constants.signals[result.signal] ?? 0) : 1);
  if (exitCode === ExitCode.setup && /^sandbox-run: /m.test(stderr)) throw setupError(stderr, command);
  const signal = result.signal ?? (exitCode > 128 ? SIGNAL_NAMES.get(exitCode - 128) : undefined);
  const all = result.all === undefined ? undefined : text(result.all);
  return {
    command,
    exitCode,
    ...(signal ? { signal } : {}),
    stdout: text(result.stdout),
    stderr,
    ...(all !== undefined ? { all } : {}),
    durationMs: result.durationMs,
    timedOut: result.timedOut,
    cancelled: result.isCanceled,
  };
}
