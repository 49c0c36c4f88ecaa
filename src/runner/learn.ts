import { lastFailedPath, recordLastFailed } from './last-failed.js';
import type { RunSummary } from './summary.js';
import { type Measurement, readTimings, updateSuite, writeTimings } from './timings.js';

/** This run's durations: per file where the runner reported files, else per item or shard. Cancelled and unstarted jobs say nothing. */
export function measurements(summary: Pick<RunSummary, 'results'>): Measurement[] {
  return summary.results.flatMap((r) => {
    if (r.status === 'cancelled' || r.status === 'setup failed') return [];
    if (r.files && r.files.length > 0) return r.files.map((f) => ({ item: f.file, ms: f.durationMs }));
    return [{ item: r.label, ms: r.durationMs }];
  });
}

/**
 * What a run (or the merged runs of M machines) teaches the next one: the
 * timings file's moving averages and the suite's failures for --last-failed.
 * `timingsPath` undefined: --no-timings (last-failed is still recorded next to the default file).
 */
export function learnFrom(summaries: readonly RunSummary[], paths: { timings?: string; lastFailed: string }): void {
  const suites = new Map<string, RunSummary[]>();
  for (const s of summaries) if (s.suite !== undefined) suites.set(s.suite, [...(suites.get(s.suite) ?? []), s]);
  let timings = paths.timings ? readTimings(paths.timings) : undefined;
  for (const [suite, group] of suites) {
    const universe = group.every((s) => s.universe) ? [...new Set(group.flatMap((s) => s.universe!))] : undefined;
    if (timings) timings = updateSuite(timings, suite, group.flatMap(measurements), universe);
    unwritable(paths.lastFailed, () => recordLastFailed(paths.lastFailed, suite, group));
  }
  if (timings && paths.timings) unwritable(paths.timings, () => writeTimings(paths.timings!, timings!));
}

/** A read-only timings location (a ConfigMap, a read-only checkout) is read but not written: one line says so, the run's result stands. */
function unwritable(path: string, write: () => void): void {
  try {
    write();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw error;
    console.error(`sandbox-run: cannot write ${path} (${code}): not updated; pass --timings FILE somewhere writable, or --no-timings`);
  }
}

export { lastFailedPath };
