import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Measured durations per item, kept between runs so the next run can order
 * and split by time. One file per project, small and in a stable order so it
 * diffs well when committed or cached:
 *
 *   { "version": 1, "suites": { "<suite>": { "<item>": { "ms": 1200, "runs": 3 } } } }
 *
 * A suite is one way of running the tests (queue glob + command, or the
 * shard-mode command), so unit and e2e runs in one project keep apart.
 */
export interface TimingsFile {
  version: 1;
  suites: Record<string, Record<string, ItemTiming>>;
}

export interface ItemTiming {
  /** Moving average of the measured durations. */
  ms: number;
  /** How many runs went into it. */
  runs: number;
}

/** The newest measurement's weight in the moving average: adapts within a few runs, one outlier moves it halfway. */
export const NEWEST_WEIGHT = 0.5;

/** The nearest directory upward holding package.json (or .git): where `.sandbox-run/` lives. */
export function projectRoot(cwd: string): string {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, '.git'))) return dir;
    if (dirname(dir) === dir) return resolve(cwd);
  }
}

export const defaultTimingsPath = (cwd: string): string => join(projectRoot(cwd), '.sandbox-run', 'timings.json');

/** Names a suite: the working directory below the project root and how the work is split. */
export function suiteKey(cwd: string, mode: string): string {
  const below = relative(projectRoot(cwd), resolve(cwd));
  return below ? `${below}: ${mode}` : mode;
}

export class TimingsError extends Error {
  override readonly name = 'TimingsError';
}

/** A missing file is an empty one; a malformed one is an error naming the fix. */
export function readTimings(path: string): TimingsFile {
  if (!existsSync(path)) return { version: 1, suites: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TimingsError(`timings file ${path} is not JSON (${(error as Error).message}): delete it or pass --no-timings`);
  }
  const file = parsed as Partial<TimingsFile>;
  if (file?.version !== 1 || typeof file.suites !== 'object' || file.suites === null)
    throw new TimingsError(`timings file ${path} is not version 1 of sandbox-run's format: delete it or pass --no-timings`);
  return file as TimingsFile;
}

/** One suite's durations as a map, empty when unknown. */
export function suiteTimings(file: TimingsFile, suite: string): Map<string, number> {
  return new Map(Object.entries(file.suites[suite] ?? {}).map(([item, t]) => [item, t.ms]));
}

export interface Measurement {
  item: string;
  ms: number;
}

/**
 * Folds this run's measurements into a suite: a moving average per item.
 * When the run knew the whole set of items (`universe`), items no longer in
 * it are dropped; a run that saw only part of the suite (one machine of M)
 * keeps the others.
 */
export function updateSuite(file: TimingsFile, suite: string, measured: readonly Measurement[], universe?: readonly string[]): TimingsFile {
  const entries = { ...(file.suites[suite] ?? {}) };
  for (const { item, ms } of measured) {
    const old = entries[item];
    entries[item] = old ? { ms: Math.round(old.ms + (ms - old.ms) * NEWEST_WEIGHT), runs: old.runs + 1 } : { ms: Math.round(ms), runs: 1 };
  }
  if (universe) {
    const keep = new Set(universe);
    for (const item of Object.keys(entries)) if (!keep.has(item)) delete entries[item];
  }
  return { version: 1, suites: { ...file.suites, [suite]: entries } };
}

/** Writes with sorted keys (stable diffs) and a rename (a reader never sees half a file). */
export function writeTimings(path: string, file: TimingsFile): void {
  // One line per item: a thousand files stay a thousand lines, and a diff shows which moved.
  const suites = Object.keys(file.suites)
    .sort()
    .map((suite) => {
      const items = file.suites[suite]!;
      const lines = Object.keys(items)
        .sort()
        .map((item) => `      ${JSON.stringify(item)}: { "ms": ${items[item]!.ms}, "runs": ${items[item]!.runs} }`);
      return `    ${JSON.stringify(suite)}: {${lines.length ? `\n${lines.join(',\n')}\n    ` : ''}}`;
    });
  const text = `{\n  "version": 1,\n  "suites": {${suites.length ? `\n${suites.join(',\n')}\n  ` : ''}}\n}\n`;
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}
