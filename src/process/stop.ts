import type { ResultPromise } from 'execa';

/** A started process, as execa returns it: a ChildProcess that is also its own result. */
type Subprocess = Pick<ResultPromise, 'kill' | 'exitCode' | 'signalCode'> & PromiseLike<unknown>;

/**
 * Stops a process: `signal`, then SIGKILL if it is still there after
 * `graceMs`; resolves once it has exited (at once if it already had).
 * Start the process with execa's `forceKillAfterDelay: false`: execa would
 * otherwise add a SIGKILL timer of its own, but only for its `killSignal`.
 */
export async function stopProcess(subprocess: Subprocess, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (subprocess.exitCode !== null || subprocess.signalCode !== null) {
    await Promise.resolve(subprocess).then(undefined, () => undefined);
    return;
  }
  subprocess.kill(signal);
  const timer = setTimeout(() => subprocess.kill('SIGKILL'), graceMs);
  try {
    await Promise.resolve(subprocess).then(undefined, () => undefined);
  } finally {
    clearTimeout(timer);
  }
}
