import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunSummary } from './summary.js';

/**
 * What failed in the last run of each suite, for --last-failed:
 *   { "version": 1, "suites": { "<suite>": ["test/a.test.ts", ...] } }
 * Items (queue mode), test files (shard mode with a runner's report) or
 * shard labels (shard mode without one). It lives next to the timings file.
 */
interface LastFailedFile {
  version: 1;
  suites: Record<string, string[]>;
}

export const lastFailedPath = (timingsPath: string): string => timingsPath.replace(/[^/]*$/, 'last-failed.json');

function read(path: string): LastFailedFile {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as LastFailedFile;
    return parsed.version === 1 && typeof parsed.suites === 'object' ? parsed : { version: 1, suites: {} };
  } catch {
    return { version: 1, suites: {} };
  }
}

/** The suite's failures last time; undefined when no run of it was recorded. */
export function readLastFailed(path: string, suite: string): string[] | undefined {
  return existsSync(path) ? read(path).suites[suite] : undefined;
}

/** What failed in a summary: its failed files where the runner reported them, else its failed items or shards. */
export function failedOf(summary: Pick<RunSummary, 'results'>): { failed: string[]; ran: string[] } {
  const failed: string[] = [];
  const ran: string[] = [];
  for (const r of summary.results) {
    if (r.files && r.files.length > 0) {
      ran.push(r.label, ...r.files.map((f) => f.file));
      failed.push(...r.files.filter((f) => f.status === 'failed').map((f) => f.file));
      // Failed without any failed file (a crash after the report, a failing global setup): rerun the shard.
      if (r.status !== 'passed' && r.status !== 'flaky' && !r.files.some((f) => f.status === 'failed')) failed.push(r.label);
    } else {
      ran.push(r.label);
      if (r.status !== 'passed' && r.status !== 'flaky') failed.push(r.label);
    }
  }
  return { failed, ran };
}

/**
 * Records a run's failures. Entries this run did not cover (another
 * machine's items) are kept, so machines of one suite do not erase each
 * other's; what it ran is replaced by what failed now.
 */
export function recordLastFailed(path: string, suite: string, summaries: readonly Pick<RunSummary, 'results'>[]): void {
  const file = read(path);
  const all = summaries.map(failedOf);
  const ran = new Set(all.flatMap((s) => s.ran));
  const kept = (file.suites[suite] ?? []).filter((item) => !ran.has(item));
  const suites = { ...file.suites, [suite]: [...new Set([...kept, ...all.flatMap((s) => s.failed)])].sort() };
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(
    temp,
    `${JSON.stringify(
      {
        version: 1,
        suites: Object.fromEntries(
          Object.keys(suites)
            .sort()
            .map((k) => [k, suites[k]]),
        ),
      },
      null,
      2,
    )}\n`,
  );
  renameSync(temp, path);
}
