import { ExitCode } from '../errors.js';
import { formatDuration } from './format.js';
import type { JobResult } from './job.js';

export interface RunSummary {
  startedAt: string;
  durationMs: number;
  parallel: number;
  machine: string;
  passed: number;
  failed: number;
  results: {
    id: number;
    label: string;
    status: JobResult['status'];
    durationMs: number;
    exitCode: number | null;
    command: string[];
    kept?: string;
    error?: string;
  }[];
}

export function summarize(results: readonly JobResult[], meta: Pick<RunSummary, 'startedAt' | 'durationMs' | 'parallel' | 'machine'>): RunSummary {
  return {
    ...meta,
    passed: results.filter((r) => r.status === 'passed').length,
    failed: results.filter((r) => r.status !== 'passed').length,
    results: results.map((r) => ({
      id: r.job.id,
      label: r.job.label,
      status: r.status,
      durationMs: r.durationMs,
      exitCode: r.exitCode,
      command: r.job.command,
      ...(r.kept ? { kept: r.kept } : {}),
      ...(r.error ? { error: r.error } : {}),
    })),
  };
}

/** 0 all passed; 125 when a sandbox could not be set up; 1 when anything else failed. */
export function exitCodeOf(results: readonly JobResult[]): number {
  if (results.some((r) => r.status === 'setup failed')) return ExitCode.setup;
  return results.every((r) => r.status === 'passed') ? 0 : 1;
}


/** The table printed at the end: one row per shard or item. */
export function formatSummary(summary: RunSummary): string {
  const rows = summary.results.map((r) => [String(r.id), r.label, r.status, formatDuration(r.durationMs), r.exitCode === null ? '-' : String(r.exitCode)]);
  const header = ['#', summary.results.some((r) => r.label.startsWith('shard ')) ? 'SHARD' : 'ITEM', 'STATUS', 'TIME', 'EXIT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  const lines = [line(header), ...rows.map(line)];
  for (const r of summary.results) {
    if (r.kept) lines.push(`kept #${r.id}: sandbox-run diff ${r.kept}`);
    if (r.error) lines.push(r.status === 'setup failed' ? `#${r.id} could not start: ${r.error}` : `#${r.id}: ${r.error}`);
  }
  lines.push(`${summary.passed} passed, ${summary.failed} failed, ${summary.results.length} total in ${formatDuration(summary.durationMs)} (${summary.parallel} at a time${summary.machine !== '1/1' ? `, machine ${summary.machine}` : ''})`);
  return lines.join('\n');
}
