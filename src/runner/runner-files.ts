import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { type Detection, scriptShell, shellQuote, type TestRunner } from './test-command.js';

/** Where a sandbox's runner writes its JSON report: a per-job host directory bound here. */
export const REPORT_DIR_INSIDE = '/tmp/.sandbox-run-report';
const REPORT_INSIDE = `${REPORT_DIR_INSIDE}/report.json`;

/**
 * The runner's invocation asked to list its test files instead of running
 * them, with the user's own arguments (filters, --project) kept:
 * `vitest list --filesOnly --json`, `jest --listTests --json`,
 * `playwright test --list --reporter=json`.
 */
export function listCommand(detection: Detection, cwd: string): string[] {
  const head = detection.words.slice(0, detection.at + 1);
  let args = detection.words.slice(detection.at + 1);
  if (detection.runner === 'vitest') {
    args = args.filter((arg, i) => !(i === args.findIndex((a) => !a.startsWith('-')) && ['run', 'watch', 'dev'].includes(arg)));
    args = ['list', ...args.filter((a) => a !== '--run' && a !== '--watch'), '--filesOnly', '--json'];
  } else if (detection.runner === 'jest') args = [...args, '--listTests', '--json'];
  else args = [...args, '--list', '--reporter=json'];
  return scriptShell(cwd, [...head, ...args].map(shellQuote).join(' '));
}

const relativeTo = (cwd: string, file: string) => relative(cwd, isAbsolute(file) ? file : resolve(cwd, file));

/** The test files in a listing's JSON output, relative to `cwd`, sorted; undefined when the output is not a listing. */
export function parseListing(runner: TestRunner, stdout: string, cwd: string): string[] | undefined {
  const start = stdout.search(/^[[{]/m);
  if (start < 0) return undefined;
  try {
    const parsed = JSON.parse(stdout.slice(start)) as unknown;
    let files: string[];
    if (runner === 'vitest') files = (parsed as { file: string }[]).map((f) => f.file);
    else if (runner === 'jest') files = parsed as string[];
    else files = ((parsed as { suites?: { file: string }[] }).suites ?? []).map((s) => s.file);
    return [...new Set(files.map((f) => relativeTo(cwd, f)))].sort();
  } catch {
    return undefined;
  }
}

/** Arguments that make the runner run exactly these files instead of its own count-based shard. */
export function fileArgs(runner: TestRunner, files: readonly string[]): string[] {
  // Jest's positional arguments are patterns; --runTestsByPath makes them paths.
  return runner === 'jest' ? ['--runTestsByPath', ...files] : [...files];
}

/** Arguments (and variables) that make the runner also write a JSON report sandbox-run can read per file. */
export function reportArgs(detection: Detection): { args: string[]; env: Record<string, string> } {
  const ownReporter = detection.words.some((w) => w.startsWith('--reporter'));
  if (detection.runner === 'vitest')
    // Reporters on the command line replace the config's: keep the default one unless the command names its own.
    return { args: [...(ownReporter ? [] : ['--reporter=default']), '--reporter=json', `--outputFile.json=${REPORT_INSIDE}`], env: {} };
  if (detection.runner === 'jest') return { args: ['--json', `--outputFile=${REPORT_INSIDE}`], env: {} };
  return { args: ownReporter ? [] : ['--reporter=list,json'], env: { PLAYWRIGHT_JSON_OUTPUT_FILE: REPORT_INSIDE, PLAYWRIGHT_JSON_OUTPUT_NAME: REPORT_INSIDE } };
}

export interface FileResult {
  file: string;
  status: 'passed' | 'flaky' | 'failed';
  durationMs: number;
}

interface PlaywrightSuite {
  file?: string;
  specs?: { tests?: { status?: string; results?: { duration?: number }[] }[] }[];
  suites?: PlaywrightSuite[];
}

/** Per-file results from a runner's JSON report on the host; undefined when there is none (the runner crashed before writing it). */
export function readReport(runner: TestRunner, path: string, cwd: string): FileResult[] | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const report = JSON.parse(readFileSync(path, 'utf8')) as {
      testResults?: { name: string; status: string; startTime: number; endTime: number }[];
      suites?: PlaywrightSuite[];
    };
    if (runner !== 'playwright')
      return (report.testResults ?? []).map((t) => ({
        file: relativeTo(cwd, t.name),
        status: t.status === 'passed' ? 'passed' : 'failed',
        durationMs: Math.max(0, Math.round(t.endTime - t.startTime)),
      }));
    return (report.suites ?? []).map((suite) => {
      let ms = 0;
      let failed = false;
      const walk = (s: PlaywrightSuite) => {
        for (const spec of s.specs ?? [])
          for (const test of spec.tests ?? []) {
            if (test.status === 'unexpected') failed = true;
            for (const r of test.results ?? []) ms += r.duration ?? 0;
          }
        for (const child of s.suites ?? []) walk(child);
      };
      walk(suite);
      return { file: relativeTo(cwd, suite.file ?? ''), status: failed ? 'failed' : 'passed', durationMs: Math.round(ms) };
    });
  } catch {
    return undefined;
  }
}
