import { readFileSync } from 'node:fs';
import type { RunSummary } from './summary.js';

export class MergeError extends Error {
  override readonly name = 'MergeError';
}

export function readSummaryFile(path: string): RunSummary {
  let parsed: Partial<RunSummary>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<RunSummary>;
  } catch (error) {
    throw new MergeError(`${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not JSON'}: pass the files that --json FILE wrote`);
  }
  if (!Array.isArray(parsed.results) || typeof parsed.machine !== 'string')
    throw new MergeError(`${path}: not a sandbox-run --json summary: pass the files that --json FILE wrote`);
  return { flaky: 0, ...parsed } as RunSummary;
}

/**
 * M machines' summaries as one run: every result once (numbered anew, in
 * machine order), the wall time of the slowest machine, the sandboxes of
 * all. Two summaries of the same machine slice are refused: that is one
 * machine's result passed twice or two runs mixed up.
 */
export function mergeSummaries(summaries: readonly RunSummary[], names: readonly string[]): RunSummary {
  if (summaries.length === 0) throw new MergeError('no summaries given: sandbox-run merge A.json B.json ...');
  const seen = new Map<string, string>();
  summaries.forEach((s, i) => {
    const key = `${s.suite ?? ''}\0${s.machine}`;
    if (s.machine !== '1/1' && seen.has(key))
      throw new MergeError(`${seen.get(key)} and ${names[i]} are both machine ${s.machine} of one suite: pass each machine's summary once`);
    seen.set(key, names[i]!);
  });
  const ordered = [...summaries].sort((a, b) => Number(a.machine.split('/')[0]) - Number(b.machine.split('/')[0]));
  const results = ordered.flatMap((s) => s.results).map((r, i) => ({ ...r, id: i + 1 }));
  const suites = [...new Set(summaries.map((s) => s.suite).filter((s) => s !== undefined))];
  const universes = summaries.every((s) => s.universe) ? [...new Set(summaries.flatMap((s) => s.universe!))].sort() : undefined;
  const started = summaries.map((s) => s.startedAt).sort()[0]!;
  return {
    startedAt: started,
    durationMs: Math.max(...summaries.map((s) => s.durationMs)),
    parallel: summaries.reduce((n, s) => n + s.parallel, 0),
    machine: '1/1',
    ...(suites.length === 1 ? { suite: suites[0]! } : {}),
    ...(universes && suites.length === 1 ? { universe: universes } : {}),
    passed: results.filter((r) => r.status === 'passed').length,
    flaky: results.filter((r) => r.status === 'flaky').length,
    failed: results.filter((r) => r.status !== 'passed' && r.status !== 'flaky' && r.status !== 'cancelled').length,
    cancelled: results.filter((r) => r.status === 'cancelled').length,
    results,
  };
}
