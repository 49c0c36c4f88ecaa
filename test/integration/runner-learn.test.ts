// The runner learning from its runs, as users run it: the built CLI, real sandboxes, a synthetic suite with
// durations injected through the timings file (no timed assertions), and a real Vitest project for file-list shards.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, NODE, ROOT, tempDir } from './support.js';

const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());
const cli = (args: string[], cwd: string) => execa(NODE, [CLI, ...args], { cwd, reject: false, env: { SANDBOX_RUN_HOME: home.path, CI: '1' } });

interface Summary {
  passed: number;
  flaky: number;
  failed: number;
  suite: string;
  results: { label: string; status: string; attempts?: number; outputTail?: string; files?: { file: string; status: string }[] }[];
}
const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;
const timingsOf = (file: string) => readJson<{ suites: Record<string, Record<string, { ms: number; runs: number }>> }>(file).suites;

/** A project of shell items; `timings` seeds the durations the runner believes. */
function suite(items: string[], timings?: Record<string, number>) {
  const project = tempDir();
  writeFileSync(join(project.path, 'package.json'), '{}');
  for (const item of items) writeFileSync(join(project.path, item), 'exit 0\n');
  const suiteName = 'each *.sh -- sh {}';
  if (timings)
    writeFileSync(
      join(project.path, 'timings.json'),
      JSON.stringify({ version: 1, suites: { [suiteName]: Object.fromEntries(Object.entries(timings).map(([k, ms]) => [k, { ms, runs: 1 }])) } }),
    );
  return project;
}

const tenAndOne = [...Array.from({ length: 10 }, (_, i) => `item-${String(i).padStart(2, '0')}.sh`), 'zz-long.sh'];
const tenAndOneTimings = Object.fromEntries(tenAndOne.map((item) => [item, item === 'zz-long.sh' ? 6000 : 1000]));

describe('timings and order', () => {
  it('records every item, then hands out the long one first', async () => {
    const project = suite(tenAndOne);
    try {
      const first = await cli(['--each', '*.sh', '--parallel', '1', '--json', 's1.json', '--output', 'quiet', '--', 'sh', '{}'], project.path);
      expect(first.exitCode).toBe(0);
      expect(readJson<Summary>(join(project.path, 's1.json')).results.map((r) => r.label)).toEqual(tenAndOne);
      // The default file, at the project root, one entry per item.
      const recorded = timingsOf(join(project.path, '.sandbox-run', 'timings.json'))['each *.sh -- sh {}']!;
      expect(Object.keys(recorded)).toEqual(tenAndOne);
      // Durations injected: the 6 s item named to sort last now starts first.
      writeFileSync(
        join(project.path, 'timings.json'),
        JSON.stringify({
          version: 1,
          suites: { 'each *.sh -- sh {}': Object.fromEntries(Object.entries(tenAndOneTimings).map(([k, ms]) => [k, { ms, runs: 1 }])) },
        }),
      );
      const second = await cli(
        ['--each', '*.sh', '--parallel', '1', '--timings', 'timings.json', '--json', 's2.json', '--output', 'quiet', '--', 'sh', '{}'],
        project.path,
      );
      expect(second.stderr).toMatch(/longest first by measured time/);
      expect(readJson<Summary>(join(project.path, 's2.json')).results.map((r) => r.label)).toEqual(['zz-long.sh', ...tenAndOne.slice(0, 10)]);
      const updated = timingsOf(join(project.path, 'timings.json'))['each *.sh -- sh {}']!;
      expect(updated['zz-long.sh']!.runs).toBe(2);
      expect(updated['zz-long.sh']!.ms).toBeLessThan(6000);
    } finally {
      project.remove();
    }
  });

  it('--no-timings neither reads nor writes', async () => {
    const project = suite(['a.sh']);
    try {
      expect((await cli(['--each', '*.sh', '--no-timings', '--output', 'quiet', '--', 'sh', '{}'], project.path)).exitCode).toBe(0);
      expect(() => readFileSync(join(project.path, '.sandbox-run', 'timings.json'))).toThrow(/ENOENT/);
    } finally {
      project.remove();
    }
  });

  it('--shard k/M splits by predicted time, the same on every machine, every item once', async () => {
    const project = suite(tenAndOne, tenAndOneTimings);
    try {
      const parts: string[][] = [];
      for (const k of [1, 2]) {
        // Each machine its own copy of the file, as each CI machine restores its own cache.
        writeFileSync(join(project.path, `t${k}.json`), readFileSync(join(project.path, 'timings.json')));
        const result = await cli(
          ['--each', '*.sh', '--shard', `${k}/2`, '--parallel', '2', '--timings', `t${k}.json`, '--json', `m${k}.json`, '--output', 'quiet', '--', 'sh', '{}'],
          project.path,
        );
        expect(result.exitCode, result.stdout).toBe(0);
        expect(result.stderr).toMatch(new RegExp(`machine ${k}/2: items split by measured time \\(predicted 8\\.0s here, 8\\.0s at most\\)`));
        parts.push(readJson<Summary>(join(project.path, `m${k}.json`)).results.map((r) => r.label));
      }
      expect(parts[0]).toEqual(['zz-long.sh', 'item-06.sh', 'item-08.sh']);
      expect([...parts[0]!, ...parts[1]!].sort()).toEqual([...tenAndOne].sort());
    } finally {
      project.remove();
    }
  });
});

describe('retries, flaky, last-failed, JUnit and merge', () => {
  // Fails on its first attempt, passes after: the attempt count lives in a bound host directory.
  const flakyScript = 'n=$(cat /tmp/state/$(basename {}) 2>/dev/null || echo 0); echo $((n+1)) > /tmp/state/$(basename {}); echo "attempt $n"; test $n -ge 1';

  it('a retry in a fresh sandbox makes a flaky item: passes by default, fails with --fail-on-flaky, shown in table, JSON and JUnit', async () => {
    const project = suite(['flaky.sh']);
    try {
      mkdirSync(join(project.path, 'state'));
      const args = (extra: string[]) => [
        '--each',
        '*.sh',
        '--bind',
        `${join(project.path, 'state')}:/tmp/state`,
        '--retries',
        '2',
        '--json',
        's.json',
        '--junit',
        'r.xml',
        ...extra,
        '--',
        'sh',
        '-c',
        flakyScript,
      ];
      const result = await cli(args([]), project.path);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/RTRY \[1\/1\] flaky\.sh failed in .* \(exit 1\): attempt 2 of 3 in a fresh sandbox/);
      expect(result.stdout).toMatch(/1\s+flaky\.sh\s+flaky\s+\S+\s+0\s+2/);
      expect(result.stdout).toMatch(/0 passed, 1 flaky, 0 failed/);
      const summary = readJson<Summary>(join(project.path, 's.json'));
      expect(summary.results[0]).toMatchObject({ status: 'flaky', attempts: 2, outputTail: 'attempt 0' });
      expect(readFileSync(join(project.path, 'r.xml'), 'utf8')).toContain(
        '<flakyFailure message="failed, then passed on attempt 2" type="flaky"><![CDATA[attempt 0]]></flakyFailure>',
      );
      writeFileSync(join(project.path, 'state', 'flaky.sh'), '0');
      expect((await cli(args(['--fail-on-flaky']), project.path)).exitCode).toBe(1);
    } finally {
      project.remove();
    }
  });

  it('--last-failed runs only what failed; JUnit carries the failure and its output', async () => {
    const project = suite(['a.sh', 'b.sh', 'c.sh']);
    try {
      writeFileSync(join(project.path, 'b.sh'), 'echo "b is broken" >&2; exit 4\n');
      const first = await cli(['--each', '*.sh', '--junit', 'r.xml', '--output', 'quiet', '--', 'sh', '{}'], project.path);
      expect(first.exitCode).toBe(1);
      const xml = readFileSync(join(project.path, 'r.xml'), 'utf8');
      expect(xml).toContain('<testsuite name="sandbox-run" tests="3" failures="1" errors="0" skipped="0"');
      expect(xml).toMatch(
        new RegExp(
          [
            /<testcase classname="sandbox-run" name="b\.sh" time="\d+\.\d{3}">/.source,
            /<failure message="failed \(exit 4\)" type="failed"><!\[CDATA\[b is broken\]\]><\/failure><\/testcase>/.source,
          ].join(''),
        ),
      );
      const rerun = await cli(['--each', '*.sh', '--last-failed', '--json', 'r.json', '--output', 'quiet', '--', 'sh', '{}'], project.path);
      expect(rerun.stderr).toMatch(/--last-failed: running the 1 item\(s\) that failed last time/);
      expect(readJson<Summary>(join(project.path, 'r.json')).results.map((r) => r.label)).toEqual(['b.sh']);
      writeFileSync(join(project.path, 'b.sh'), 'exit 0\n');
      expect((await cli(['--each', '*.sh', '--last-failed', '--output', 'quiet', '--', 'sh', '{}'], project.path)).exitCode).toBe(0);
      const after = await cli(['--each', '*.sh', '--last-failed', '--json', 'r.json', '--output', 'quiet', '--', 'sh', '{}'], project.path);
      expect(after.stderr).toMatch(/nothing failed last time: running everything/);
      expect(readJson<Summary>(join(project.path, 'r.json')).results).toHaveLength(3);
    } finally {
      project.remove();
    }
  });

  it('merge: two machines into one summary, exit code, JUnit and timings update', async () => {
    const project = suite(tenAndOne, tenAndOneTimings);
    try {
      writeFileSync(join(project.path, 'item-03.sh'), 'exit 2\n');
      for (const k of [1, 2])
        await cli(['--each', '*.sh', '--shard', `${k}/2`, '--no-timings', '--json', `m${k}.json`, '--output', 'quiet', '--', 'sh', '{}'], project.path);
      const merged = await cli(['merge', 'm1.json', 'm2.json', '--timings', 'timings.json', '--junit', 'all.xml', '--json', 'all.json'], project.path);
      expect(merged.exitCode).toBe(1);
      expect(merged.stdout).toMatch(/10 passed, 1 failed, 11 total/);
      const all = readJson<Summary>(join(project.path, 'all.json'));
      expect(all.results.map((r) => r.label).sort()).toEqual([...tenAndOne].sort());
      expect(readFileSync(join(project.path, 'all.xml'), 'utf8')).toMatch(/tests="11" failures="1"/);
      const timings = timingsOf(join(project.path, 'timings.json'))['each *.sh -- sh {}']!;
      expect(Object.values(timings).every((t) => t.runs === 2)).toBe(true);
      const again = await cli(['merge', 'm1.json', 'm1.json'], project.path);
      expect(again.exitCode).toBe(2);
      expect(again.stderr.trim().split('\n')).toHaveLength(1);
      expect(again.stderr).toMatch(/m1\.json and m1\.json are both machine 1\/2/);
    } finally {
      project.remove();
    }
  });
});

describe('shard mode never multiplies the work by accident', () => {
  it('refuses a command it cannot split in one line naming the fixes; --replicate runs copies', async () => {
    const refused = await cli(['--parallel', '2', '--', 'true'], ROOT);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/'true' runs no Vitest, Jest or Playwright .* use --each GLOB .*\{shard\}.*\$SANDBOX_SHARD.*--replicate/);
    const copies = await cli(['--parallel', '2', '--replicate', '--output', 'quiet', '--no-timings', '--', 'true'], ROOT);
    expect(copies.exitCode).toBe(0);
    expect(copies.stdout).toMatch(/2 passed, 0 failed, 2 total/);
  });
});

describe('a real Vitest project, sharded by file', () => {
  const fixture = join(ROOT, 'test/fixtures/vitest-files');
  const vitest = ['node', '../../../node_modules/vitest/vitest.mjs', 'run', '--configLoader', 'native'];
  const suiteName = `test/fixtures/vitest-files: ${vitest.join(' ')}`;

  it('count-based at first, recording per-file times; then each sandbox gets its files by LPT', async () => {
    const dir = tempDir();
    try {
      const timings = join(dir.path, 'timings.json');
      const first = await cli(['--parallel', '2', '--timings', timings, '--json', join(dir.path, '1.json'), '--output', 'quiet', '--', ...vitest], fixture);
      expect(first.exitCode).toBe(0);
      expect(first.stderr).toMatch(/runs vitest: passing --shard=i\/N to each sandbox \(no per-file timings yet: count-based\)/);
      expect(Object.keys(timingsOf(timings)[suiteName]!)).toEqual(['a.test.ts', 'b.test.ts', 'c.test.ts', 'd.test.ts']);
      // Injected: a.test.ts is long. Files the runner lists but the timings lack (e.test.ts here) are placed too.
      writeFileSync(
        timings,
        JSON.stringify({
          version: 1,
          suites: { [suiteName]: { 'a.test.ts': { ms: 5000, runs: 1 }, 'b.test.ts': { ms: 100, runs: 1 }, 'c.test.ts': { ms: 100, runs: 1 } } },
        }),
      );
      const machines: Summary[] = [];
      for (const k of [1, 2]) {
        const json = join(dir.path, `m${k}.json`);
        const result = await cli(['--shard', `${k}/2`, '--parallel', '1', '--timings', timings, '--json', json, '--output', 'quiet', '--', ...vitest], fixture);
        expect(result.exitCode).toBe(0);
        expect(result.stderr).toMatch(/passing each sandbox its test files, split by measured time \(4 files into 2 sandboxes; .*\) instead of --shard=i\/N/);
        machines.push(readJson<Summary>(json));
      }
      const files = machines.map((m) => m.results.flatMap((r) => (r.files ?? []).map((f) => `${f.file}:${f.status}`)));
      expect(files).toEqual([['a.test.ts:passed'], ['b.test.ts:passed', 'c.test.ts:passed', 'd.test.ts:passed']]);
    } finally {
      dir.remove();
    }
  });
});
