// The runner's memory between runs: timings, order, timed splits, retries, last-failed, JUnit, merge, and runner recognition.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job, JobResult } from '../../src/runner/job.js';
import { toJUnit } from '../../src/runner/junit.js';
import { failedOf, readLastFailed, recordLastFailed } from '../../src/runner/last-failed.js';
import { learnFrom, measurements } from '../../src/runner/learn.js';
import { lptSplit, predict } from '../../src/runner/lpt.js';
import { mergeSummaries } from '../../src/runner/merge.js';
import { longestFirst } from '../../src/runner/order.js';
import { PlanError, planJobs } from '../../src/runner/plan.js';
import { withRetries } from '../../src/runner/retries.js';
import { fileArgs, listCommand, parseListing, readReport } from '../../src/runner/runner-files.js';
import { exitCodeOf, type RunSummary, summarize } from '../../src/runner/summary.js';
import { detectTestRunner, shellWords, withShardFlag } from '../../src/runner/test-command.js';
import { readTimings, suiteTimings, updateSuite, writeTimings } from '../../src/runner/timings.js';
import { tempDir } from '../integration/support.js';

const dir = tempDir();
afterAll(() => dir.remove());

describe('timings file', () => {
  it('keeps a moving average per item, drops vanished items, writes sorted one line per item', () => {
    const path = join(dir.path, 'timings.json');
    let file = readTimings(path);
    file = updateSuite(file, 's', [
      { item: 'b', ms: 1000 },
      { item: 'a', ms: 200 },
      { item: 'gone', ms: 5 },
    ]);
    file = updateSuite(file, 's', [{ item: 'b', ms: 3000 }], ['a', 'b']);
    writeTimings(path, file);
    expect(readFileSync(path, 'utf8')).toBe(
      '{\n  "version": 1,\n  "suites": {\n    "s": {\n      "a": { "ms": 200, "runs": 1 },\n      "b": { "ms": 2000, "runs": 2 }\n    }\n  }\n}\n',
    );
    expect(suiteTimings(readTimings(path), 's')).toEqual(
      new Map([
        ['a', 200],
        ['b', 2000],
      ]),
    );
  });

  it('a machine that saw part of the suite keeps the others', () => {
    const file = updateSuite({ version: 1, suites: { s: { x: { ms: 1, runs: 1 } } } }, 's', [{ item: 'y', ms: 2 }]);
    expect(Object.keys(file.suites.s!)).toEqual(['x', 'y']);
  });

  it('refuses a malformed file with the fix', () => {
    const path = join(dir.path, 'bad.json');
    writeFileSync(path, '{"version": 7}');
    expect(() => readTimings(path)).toThrow(/not version 1.*delete it or pass --no-timings/);
  });
});

describe('order and splits', () => {
  it('hands out unknown items first, then longest first, ties by name', () => {
    const timings = new Map([
      ['a', 100],
      ['b', 6000],
      ['c', 100],
      ['d', 900],
    ]);
    expect(longestFirst(['a', 'b', 'c', 'd', 'new', 'e-new'], timings)).toEqual(['e-new', 'new', 'b', 'd', 'a', 'c']);
  });

  it('packs longest-processing-time first into near-equal bins, the same whatever the input order', () => {
    const items = [6000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000].map((ms, i) => ({ item: `t${String(i).padStart(2, '0')}`, ms }));
    const bins = lptSplit(items, 2);
    expect(bins.map((b) => b.ms)).toEqual([8000, 8000]);
    expect(bins[0]!.items).toEqual(['t00', 't07', 't09']);
    expect(lptSplit([...items].reverse(), 2)).toEqual(bins);
  });

  it('estimates unknown items as the mean of the known, and knows nothing without timings', () => {
    expect(
      predict(
        ['a', 'b', 'new'],
        new Map([
          ['a', 100],
          ['b', 300],
        ]),
      ),
    ).toEqual([
      { item: 'a', ms: 100 },
      { item: 'b', ms: 300 },
      { item: 'new', ms: 200 },
    ]);
    expect(predict(['a'], new Map())).toBeUndefined();
  });
});

describe('planJobs with timings', () => {
  const project = tempDir();
  afterAll(() => project.remove());
  for (const name of ['a', 'b', 'c', 'd', 'z']) writeFileSync(join(project.path, `${name}.t`), '');
  const timings = new Map([
    ['a.t', 100],
    ['b.t', 100],
    ['c.t', 100],
    ['d.t', 100],
    ['z.t', 600],
  ]);

  it('queue mode: longest first', async () => {
    const plan = await planJobs({ command: ['cat'], cwd: project.path, parallel: 2, machine: { index: 1, count: 1 }, each: '*.t', timingsFor: () => timings });
    expect(plan.jobs.map((j) => j.label)).toEqual(['z.t', 'a.t', 'b.t', 'c.t', 'd.t']);
    expect(plan.notes[0]).toMatch(/longest first by measured time/);
  });

  it('queue mode across machines: an LPT split, complete and disjoint', async () => {
    const parts = await Promise.all(
      [1, 2].map((k) =>
        planJobs({ command: ['cat'], cwd: project.path, parallel: 1, machine: { index: k, count: 2 }, each: '*.t', timingsFor: () => timings }),
      ),
    );
    expect(parts.map((p) => p.jobs.map((j) => j.label))).toEqual([['z.t'], ['a.t', 'b.t', 'c.t', 'd.t']]);
  });

  it('--last-failed: only what failed; nothing recorded runs everything', async () => {
    const plan = await planJobs({
      command: ['cat'],
      cwd: project.path,
      parallel: 1,
      machine: { index: 1, count: 1 },
      each: '*.t',
      lastFailedFor: () => ['c.t'],
    });
    expect(plan.jobs.map((j) => j.label)).toEqual(['c.t']);
    const all = await planJobs({
      command: ['cat'],
      cwd: project.path,
      parallel: 1,
      machine: { index: 1, count: 1 },
      each: '*.t',
      lastFailedFor: () => undefined,
    });
    expect(all.jobs).toHaveLength(5);
    expect(all.notes.join('\n')).toMatch(/no run recorded last time: running everything/);
  });

  it('shard mode: refuses a command nothing splits, unless --replicate', async () => {
    const input = { command: ['make', 'test'], cwd: project.path, parallel: 2, machine: { index: 1, count: 1 } };
    await expect(planJobs(input)).rejects.toThrow(PlanError);
    await expect(planJobs(input)).rejects.toThrow(/use --each GLOB .*\{shard\}.*\$SANDBOX_SHARD.*--replicate/);
    expect((await planJobs({ ...input, replicate: true })).jobs).toHaveLength(2);
    expect((await planJobs({ ...input, parallel: 1 })).jobs).toHaveLength(1);
  });

  it('shard mode with file timings: each sandbox its files, by LPT over machines x sandboxes, with a JSON report', async () => {
    const files = ['a.test.ts', 'b.test.ts', 'c.test.ts', 'd.test.ts', 'new.test.ts'];
    const fileTimings = new Map([
      ['a.test.ts', 5000],
      ['b.test.ts', 1000],
      ['c.test.ts', 1000],
      ['d.test.ts', 1000],
    ]);
    const plans = await Promise.all(
      [1, 2].map((k) =>
        planJobs({
          command: ['vitest', 'run'],
          cwd: project.path,
          parallel: 1,
          machine: { index: k, count: 2 },
          timingsFor: () => fileTimings,
          listFiles: async () => files,
          reportDir: join(dir.path, `r${k}`),
        }),
      ),
    );
    expect(plans.map((p) => p.jobs.map((j) => j.files))).toEqual([[['a.test.ts']], [['new.test.ts', 'b.test.ts', 'c.test.ts', 'd.test.ts']]]);
    expect(plans[0]!.jobs[0]!.command).toEqual([
      'vitest',
      'run',
      'a.test.ts',
      '--reporter=default',
      '--reporter=json',
      '--outputFile.json=/tmp/.sandbox-run-report/report.json',
    ]);
    expect(plans[0]!.jobs[0]!.reportFile).toBe(join(dir.path, 'r1', '1', 'report.json'));
    expect(plans[0]!.notes[0]).toMatch(/passing each sandbox its test files, split by measured time .* instead of --shard=i\/N/);
    expect(plans[0]!.universe).toEqual(files);
  });
});

describe('runner recognition (shard mode)', () => {
  const project = tempDir();
  afterAll(() => project.remove());
  writeFileSync(
    join(project.path, 'package.json'),
    JSON.stringify({
      scripts: {
        'test:only': 'node --experimental-vm-modules node_modules/.bin/jest',
        ci: 'tsc -p . && NODE_ENV=test jest --ci --coverage && echo "done; ok"',
        two: 'vitest run && jest',
        e2e: 'pnpm exec playwright test',
      },
    }),
  );

  it.each([
    [['node', '--experimental-vm-modules', 'node_modules/.bin/jest'], 'jest', ['node', '--experimental-vm-modules', 'node_modules/.bin/jest', '--shard=1/2']],
    [
      ['node', '-r', 'ts-node/register', 'node_modules/jest/bin/jest.js', '--ci'],
      'jest',
      ['node', '-r', 'ts-node/register', 'node_modules/jest/bin/jest.js', '--ci', '--shard=1/2'],
    ],
    [['node', 'node_modules/vitest/vitest.mjs', 'run'], 'vitest', ['node', 'node_modules/vitest/vitest.mjs', 'run', '--shard=1/2']],
    [['npx', '--yes', 'vitest', 'run'], 'vitest', ['npx', '--yes', 'vitest', 'run', '--shard=1/2']],
    [['pnpm', 'exec', 'playwright', 'test'], 'playwright', ['pnpm', 'exec', 'playwright', 'test', '--shard=1/2']],
    [['yarn', 'jest'], 'jest', ['yarn', 'jest', '--shard=1/2']],
    [['npm', 'run', 'test:only'], 'jest', ['npm', 'run', 'test:only', '--', '--shard=1/2']],
    [['npm', 'run', 'e2e'], 'playwright', ['npm', 'run', 'e2e', '--', '--shard=1/2']],
  ])('%j runs %s', (command, runner, sharded) => {
    const detection = detectTestRunner(command, project.path)!;
    expect(detection.runner).toBe(runner);
    expect(withShardFlag(command, detection, '1/2')).toEqual(sharded);
  });

  it('a compound script: only the runner segment gets the shard, the rest runs as written', () => {
    const detection = detectTestRunner(['npm', 'run', 'ci'], project.path)!;
    expect(detection.runner).toBe('jest');
    expect(detection.via).toMatch(/npm run ci \(the jest command in its script\)/);
    const [sh, flag, script] = withShardFlag(['npm', 'run', 'ci'], detection, '2/3');
    expect([sh, flag]).toEqual(['sh', '-c']);
    expect(script).toMatch(/^PATH=.*node_modules\/\.bin.*:"\$PATH"; tsc -p \. && NODE_ENV=test jest --ci --coverage --shard=2\/3 && echo "done; ok"$/);
  });

  it('two runners in one script: no single place for the shard', () => {
    expect(detectTestRunner(['npm', 'run', 'two'], project.path)).toBeUndefined();
  });

  it('splits shell words with quotes', () => {
    expect(shellWords(`A=1 jest --testNamePattern 'a b' "c\\"d"`)).toEqual(['A=1', 'jest', '--testNamePattern', 'a b', 'c"d']);
  });

  it('lists files through the runner and reads its reports', () => {
    const vitest = detectTestRunner(['vitest', 'run', '--project', 'unit'], project.path)!;
    expect(listCommand(vitest, project.path)[2]).toMatch(/; vitest list --project unit --filesOnly --json$/);
    const jest = detectTestRunner(['npm', 'run', 'test:only'], project.path)!;
    expect(listCommand(jest, project.path)[2]).toMatch(/; node --experimental-vm-modules node_modules\/\.bin\/jest --listTests --json$/);
    expect(parseListing('vitest', `noise\n[{"file":"${project.path}/b.test.ts"},{"file":"${project.path}/a.test.ts"}]`, project.path)).toEqual([
      'a.test.ts',
      'b.test.ts',
    ]);
    expect(fileArgs('jest', ['a.test.ts'])).toEqual(['--runTestsByPath', 'a.test.ts']);
    const report = join(dir.path, 'report.json');
    writeFileSync(report, JSON.stringify({ testResults: [{ name: `${project.path}/a.test.ts`, status: 'failed', startTime: 1000, endTime: 1250 }] }));
    expect(readReport('vitest', report, project.path)).toEqual([{ file: 'a.test.ts', status: 'failed', durationMs: 250 }]);
  });
});

const job = (id: number, label = `item-${id}`): Job => ({ id, label, command: ['x'], env: {}, shard: { index: id, count: 3 } });
const result = (j: Job, status: JobResult['status'], output = ''): JobResult => ({
  job: j,
  status,
  exitCode: status === 'passed' ? 0 : 1,
  durationMs: 1200,
  output,
});

describe('retries', () => {
  it('retries failures in fresh attempts: passing later is flaky, never passing stays failed', async () => {
    const signal = new AbortController().signal;
    const outcomes = new Map<number, JobResult['status'][]>([
      [1, ['failed', 'passed']],
      [2, ['failed', 'failed', 'failed']],
      [3, ['setup failed', 'passed']],
    ]);
    const calls = new Map<number, number>();
    const attempt = async (j: Job) => {
      const n = calls.get(j.id) ?? 0;
      calls.set(j.id, n + 1);
      return result(j, outcomes.get(j.id)![n]!, `attempt ${n + 1}`);
    };
    const run = withRetries(attempt, 2, { signal });
    const [flaky, failed, setup] = await Promise.all([run(job(1)), run(job(2)), run(job(3))]);
    expect([flaky.status, flaky.attempts, flaky.firstFailure?.output]).toEqual(['flaky', 2, 'attempt 1']);
    expect([failed.status, failed.attempts]).toEqual(['failed', 3]);
    expect([setup.status, setup.attempts]).toEqual(['setup failed', 1]);
    expect(exitCodeOf([flaky])).toBe(0);
    expect(exitCodeOf([flaky], true)).toBe(1);
  });
});

const summaryOf = (results: JobResult[], machine: string, suite = 's'): RunSummary =>
  summarize(results, { startedAt: '2025-01-01T00:00:00.000Z', durationMs: 3000, parallel: 2, machine, suite });

describe('JUnit', () => {
  it('one test case per item with time, failure message and output tail; flaky and cancelled marked', () => {
    const flaky = { ...result(job(2), 'flaky'), attempts: 2, firstFailure: { exitCode: 1, output: 'first try broke' } };
    const xml = toJUnit(
      summaryOf(
        [result(job(1), 'passed'), flaky, result(job(3, 'a<b>&"c'), 'failed', 'boom\u001b[31m red\u001b[0m ]]> end'), result(job(4), 'cancelled')],
        '1/1',
      ),
    );
    expect(xml).toContain('<testsuite name="sandbox-run" tests="4" failures="1" errors="0" skipped="1" time="3.000"');
    expect(xml).toContain('<testcase classname="sandbox-run" name="item-1" time="1.200"/>');
    expect(xml).toContain('<flakyFailure message="failed, then passed on attempt 2" type="flaky"><![CDATA[first try broke]]></flakyFailure>');
    expect(xml).toContain(
      'name="a&lt;b&gt;&amp;&quot;c" time="1.200"><failure message="failed (exit 1)" type="failed"><![CDATA[boom red ]]]]><![CDATA[> end]]></failure>',
    );
    expect(xml).toContain('<skipped message="cancelled"/>');
  });
});

describe('merge and last-failed', () => {
  it('merges machines into one summary and one timings and last-failed update', () => {
    const a = { ...summaryOf([result(job(1, 'x'), 'passed'), result(job(2, 'y'), 'failed', 'y broke')], '1/2'), universe: ['x', 'y', 'z'] };
    const b = { ...summaryOf([result(job(1, 'z'), 'flaky')], '2/2'), universe: ['x', 'y', 'z'] };
    const merged = mergeSummaries([b, a], ['b.json', 'a.json']);
    expect(merged.results.map((r) => [r.id, r.label, r.status])).toEqual([
      [1, 'x', 'passed'],
      [2, 'y', 'failed'],
      [3, 'z', 'flaky'],
    ]);
    expect(merged).toMatchObject({ passed: 1, flaky: 1, failed: 1, parallel: 4, suite: 's' });
    expect(exitCodeOf(merged.results)).toBe(1);
    expect(() => mergeSummaries([a, a], ['a.json', 'again.json'])).toThrow(/a.json and again.json are both machine 1\/2/);
    const timings = join(dir.path, 'merged-timings.json');
    const lastFailed = join(dir.path, 'last-failed.json');
    learnFrom([a, b], { timings, lastFailed });
    expect(suiteTimings(readTimings(timings), 's')).toEqual(
      new Map([
        ['x', 1200],
        ['y', 1200],
        ['z', 1200],
      ]),
    );
    expect(readLastFailed(lastFailed, 's')).toEqual(['y']);
    // One machine passing its items later clears only its own failures.
    recordLastFailed(lastFailed, 's', [summaryOf([result(job(1, 'y'), 'passed')], '1/2')]);
    expect(readLastFailed(lastFailed, 's')).toEqual([]);
  });

  it('shard mode: per-file results give per-file timings and failures', () => {
    const shard = {
      ...result(job(1, 'shard 1/2'), 'failed'),
      files: [
        { file: 'a.test.ts', status: 'passed' as const, durationMs: 10 },
        { file: 'b.test.ts', status: 'failed' as const, durationMs: 20 },
      ],
    };
    const summary = summaryOf([shard], '1/1');
    expect(measurements(summary)).toEqual([
      { item: 'a.test.ts', ms: 10 },
      { item: 'b.test.ts', ms: 20 },
    ]);
    expect(failedOf(summary).failed).toEqual(['b.test.ts']);
  });
});
