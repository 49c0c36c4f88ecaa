import { ExitCode } from '../errors.js';
import { formatDuration } from './format.js';
import type { JobResult } from './job.js';
import type { FileResult } from './runner-files.js';

/** How much of a failed job's output the JSON (and so JUnit and merge) keeps. */
const TAIL_CHARS = 4000;

export interface SummaryResult {
  id: number;
  label: string;
  status: JobResult['status'];
  durationMs: number;
  exitCode: number | null;
  command: string[];
  kept?: string;
  error?: string;
  attempts?: number;
  /** The end of the output of a job that failed (or of a flaky job's first failure). */
  outputTail?: string;
  files?: FileResult[];
}

export interface RunSummary {
  startedAt: string;
  durationMs: number;
  parallel: number;
  machine: string;
  /** The suite's name in the timings and last-failed files, so `merge` can update them. */
  suite?: string;
  /** Every item of the suite, when this run knew them all. */
  universe?: string[];
  passed: number;
  flaky: number;
  failed: number;
  /** Not counted as failed (Ctrl-C, --fail-fast). */
  cancelled?: number;
  results: SummaryResult[];
}

export const tail = (text: string, chars = TAIL_CHARS): string => (text.length > chars ? `…${text.slice(-chars)}` : text);

export function summarize(
  results: readonly JobResult[],
  meta: Pick<RunSummary, 'startedAt' | 'durationMs' | 'parallel' | 'machine'> & Partial<Pick<RunSummary, 'suite' | 'universe'>>,
): RunSummary {
  return {
    ...meta,
    passed: results.filter((r) => r.status === 'passed').length,
    flaky: results.filter((r) => r.status === 'flaky').length,
    // Cancelled (Ctrl-C, --fail-fast) did not fail: counted apart.
    failed: results.filter((r) => r.status !== 'passed' && r.status !== 'flaky' && r.status !== 'cancelled').length,
    cancelled: results.filter((r) => r.status === 'cancelled').length,
    results: results.map((r) => {
      const failedOutput = r.status === 'flaky' ? r.firstFailure?.output : r.status !== 'passed' && r.status !== 'cancelled' ? r.output : undefined;
      return {
        id: r.job.id,
        label: r.job.label,
        status: r.status,
        durationMs: r.durationMs,
        exitCode: r.exitCode,
        command: r.job.command,
        ...(r.kept ? { kept: r.kept } : {}),
        ...(r.error ? { error: r.error } : {}),
        ...(r.attempts && r.attempts > 1 ? { attempts: r.attempts } : {}),
        ...(failedOutput ? { outputTail: tail(failedOutput) } : {}),
        ...(r.files ? { files: r.files } : {}),
      };
    }),
  };
}

/**
 * 0 all passed (flaky ones included, unless `failOnFlaky`); 125 when a
 * sandbox could not be set up; 1 when anything else failed, timed out or
 * was cancelled.
 */
export function exitCodeOf(results: readonly Pick<JobResult, 'status'>[], failOnFlaky = false): number {
  if (results.some((r) => r.status === 'setup failed')) return ExitCode.setup;
  return results.every((r) => r.status === 'passed' || (r.status === 'flaky' && !failOnFlaky)) ? 0 : 1;
}

/** The table printed at the end: one row per shard or item. */
export function formatSummary(summary: RunSummary): string {
  const rows = summary.results.map((r) => [
    String(r.id),
    r.label,
    r.status,
    formatDuration(r.durationMs),
    r.exitCode === null ? '-' : String(r.exitCode),
    r.attempts && r.attempts > 1 ? String(r.attempts) : '',
  ]);
  const retried = rows.some((row) => row[5] !== '');
  const header = ['#', summary.results.some((r) => r.label.startsWith('shard ')) ? 'SHARD' : 'ITEM', 'STATUS', 'TIME', 'EXIT', ...(retried ? ['TRIES'] : [])];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .slice(0, header.length)
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...rows.map(line)];
  for (const r of summary.results) {
    if (r.kept) lines.push(`kept #${r.id}: sandbox-run open ${r.kept}   (what it changed: sandbox-run diff ${r.kept})`);
    if (r.error) lines.push(r.status === 'setup failed' ? `#${r.id} could not start: ${r.error}` : `#${r.id}: ${r.error}`);
    for (const f of r.files ?? []) if (f.status !== 'passed') lines.push(`#${r.id}: ${f.file} ${f.status}`);
  }
  const flaky = summary.flaky ? `, ${summary.flaky} flaky` : '';
  const cancelled = summary.cancelled ? `, ${summary.cancelled} cancelled` : '';
  // No more ran at once than there were items.
  const atATime = Math.max(1, Math.min(summary.parallel, summary.results.length));
  lines.push(
    `${summary.passed} passed${flaky}, ${summary.failed} failed${cancelled}, ${summary.results.length} total in ${formatDuration(summary.durationMs)} ` +
      `(${atATime} at a time${summary.machine !== '1/1' ? `, machine ${summary.machine}` : ''})`,
  );
  return lines.join('\n');
}
