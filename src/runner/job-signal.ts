/**
 * A job's own abort signal, following the run's. execa and the pool add
 * listeners to the signal they are given and drop them only when their own
 * work ends; on one shared signal those of a long queue add up (Node warns
 * at 11). One listener per running job on the run's signal, removed when
 * the job ends, instead.
 */
export function jobSignal(run: AbortSignal): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort(run.reason);
  if (run.aborted) abort();
  else run.addEventListener('abort', abort, { once: true });
  return { signal: controller.signal, done: () => run.removeEventListener('abort', abort) };
}
