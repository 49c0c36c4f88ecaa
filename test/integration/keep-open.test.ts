// Post-mortem: a failed job's sandbox kept whole (PostgreSQL's data too),
// opened again with `sandbox-run open`, diffed, pruned; service logs on the
// host. Runs the CLI from source (tsx), against real PostgreSQL 15.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../src/runner/job.js';
import { formatSummary, summarize } from '../../src/runner/summary.js';
import { NODE, ROOT, tempDir } from './support.js';

const MAIN = join(ROOT, 'src/cli/main.ts');
/** tsx's loader by path: the projects these tests make have no node_modules. */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());

const cli = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  execa(NODE, ['--import', TSX, MAIN, ...args], { cwd, reject: false, env: { SANDBOX_RUN_HOME: home.path, CI: '1', ...env }, extendEnv: true });

interface Summary {
  results: { label: string; status: string; kept?: string; error?: string }[];
}
const readSummary = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Summary;

function project(config: object, files: Record<string, string>): { path: string; remove: () => void } {
  const dir = tempDir('sandbox-run-keep-');
  writeFileSync(join(dir.path, 'sandbox.config.json'), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, name), text);
  return dir;
}

describe('--keep-failed with the postgres preset', () => {
  const shop = project(
    { presets: [{ postgres: { database: 'shop', seed: { sql: ['seed.sql'] } } }] },
    {
      'seed.sql': 'create table accounts (id int primary key, balance int not null); insert into accounts select g, 100 from generate_series(1, 50) g;',
      'a-pass.sh': 'psql -v ON_ERROR_STOP=1 -c "update accounts set balance = 0 where id = 1"',
      'b-fail.sh': 'psql -v ON_ERROR_STOP=1 -c "insert into accounts values (999, 7)" && echo broken > written.txt && exit 1',
    },
  );
  afterAll(() => shop.remove());
  let kept = '';

  it('keeps the failed job whole and prints how to open it', async () => {
    const json = join(shop.path, 'summary.json');
    const result = await cli(['--each', '*.sh', '--parallel', '2', '--keep-failed', '--output', 'quiet', '--json', json, '--', 'sh', '{}'], shop.path);
    expect(result.exitCode, result.stderr).toBe(1);
    const summary = readSummary(json);
    expect(summary.results.find((r) => r.label === 'a-pass.sh')).toMatchObject({ status: 'passed' });
    const failed = summary.results.find((r) => r.label === 'b-fail.sh')!;
    expect(failed.status).toBe('failed');
    kept = failed.kept!;
    expect(kept.startsWith(join(home.path, 'runs'))).toBe(true);
    expect(result.stdout).toContain(`sandbox-run open ${kept}`);
    const manifest = JSON.parse(readFileSync(join(kept, 'kept.json'), 'utf8'));
    expect(manifest).toMatchObject({ version: 2, label: 'b-fail.sh', command: ['sh', 'b-fail.sh'] });
    expect(manifest.services.map((s: { name: string }) => s.name)).toEqual(['postgres']);
    expect(manifest.env.SANDBOX_ITEM).toBe('b-fail.sh');
    expect(readFileSync(join(kept, 'logs/postgres.log'), 'utf8')).toMatch(/database system is shut down/);
    // Nothing left in flight: the pending layers of passed and warm sandboxes are gone.
    expect(existsSync(join(home.path, 'keeping')) ? readdirSync(join(home.path, 'keeping')) : []).toEqual([]);
  }, 180_000);

  it('opens the kept database: the failed test row is there, and every open sees the same pristine state', async () => {
    const query = (sql: string) => cli(['open', kept, '--', 'psql', '-tAc', sql], shop.path);
    const first = await query('select balance from accounts where id = 999');
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe('7');
    expect(first.stderr).toMatch(/opened b-fail\.sh .* with postgres running; copy-on-write/);
    // The test's file is in the kept working directory, the test's variables are set.
    const files = await cli(['open', kept, '--', 'sh', '-c', 'cat written.txt; echo "$SANDBOX_ITEM"'], shop.path);
    expect(files.stdout.trim().split('\n')).toEqual(['broken', 'b-fail.sh']);
    const write = await query('delete from accounts where id = 999');
    expect(write.exitCode).toBe(0);
    const again = await query('select count(*) from accounts where id = 999');
    expect(again.stdout.trim()).toBe('1');
  }, 120_000);

  it('diffs every kept layer under its mount point, and prune removes the kept run', async () => {
    const diff = await cli(['diff', kept], shop.path);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/^A .*\/written\.txt$/m);
    expect(diff.stdout).toMatch(/^C \/tmp\/sandbox-run-postgres\/data\/base\//m);
    const prune = await cli(['prune'], shop.path);
    expect(prune.exitCode, prune.stderr).toBe(0);
    expect(prune.stdout).toContain('deleted kept run');
    expect(existsSync(kept)).toBe(false);
  }, 60_000);
});

describe('service logs on the host', () => {
  it('a service that dies under the test fails it with its log tail; the whole log is on the host', async () => {
    const dying = project(
      {
        services: [
          {
            name: 'flaky',
            command: ['sh', '-c', 'echo up; while [ ! -e /tmp/die ]; do sleep 0.02; done; echo "fatal: dying on purpose"; exit 3'],
            ready: { log: 'up' },
          },
        ],
      },
      { 'job.sh': "touch /tmp/die; while pgrep -f 'while \\[ ! -e /tmp/die' >/dev/null; do sleep 0.02; done; exit 0" },
    );
    try {
      const json = join(dying.path, 'summary.json');
      const result = await cli(['--each', 'job.sh', '--output', 'quiet', '--json', json, '--', 'sh', '{}'], dying.path);
      expect(result.exitCode).toBe(1);
      const [job] = readSummary(json).results;
      expect(job!.status).toBe('failed');
      expect(job!.error).toMatch(
        /service flaky exited with code 3 while the sandbox was in use; whole log: (\S+); last lines:\n {2}up\n {2}fatal: dying on purpose/,
      );
      const log = /whole log: (\S+);/.exec(job!.error!)![1]!;
      expect(readFileSync(log, 'utf8')).toBe('up\nfatal: dying on purpose\n');
      expect(result.stdout).toContain('fatal: dying on purpose');
    } finally {
      dying.remove();
    }
  }, 60_000);

  it('a service that cannot start leaves its log on the host and its tail in the summary', async () => {
    const broken = project(
      { services: [{ name: 'broken', command: ['sh', '-c', 'echo "fatal: no config"; exit 3'], ready: { tcp: 9 } }] },
      { 'job.sh': 'true' },
    );
    try {
      const json = join(broken.path, 'summary.json');
      const result = await cli(['--each', 'job.sh', '--output', 'quiet', '--json', json, '--', 'sh', '{}'], broken.path);
      expect(result.exitCode).toBe(125);
      const [job] = readSummary(json).results;
      expect(job!.status).toBe('setup failed');
      expect(job!.error).toMatch(/service broken exited with code 3 before it was ready; whole log: \S+; last lines:\n {2}fatal: no config/);
      expect(readFileSync(/whole log: (\S+);/.exec(job!.error!)![1]!, 'utf8')).toBe('fatal: no config\n');
      expect(result.stdout).toMatch(/#1 could not start: service broken/);
    } finally {
      broken.remove();
    }
  }, 60_000);
});

describe('small runner defects', () => {
  it('no MaxListenersExceededWarning on a run of more than 10 items; "(1 at a time)" for one item', async () => {
    const items = project({}, Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`item-${i}.txt`, String(i)])));
    try {
      const many = await cli(['--each', '*.txt', '--parallel', '2', '--output', 'quiet', '--', 'cat', '{}'], items.path);
      expect(many.exitCode, many.stderr).toBe(0);
      expect(many.stderr).not.toMatch(/MaxListenersExceeded|memory leak/);
      expect(many.stdout).toMatch(/12 passed, 0 failed, 12 total in \S+ \(2 at a time\)/);
      const one = await cli(['--each', 'item-0.txt', '--parallel', '4', '--output', 'quiet', '--', 'cat', '{}'], items.path);
      expect(one.stdout).toMatch(/1 passed, 0 failed, 1 total in \S+ \(1 at a time\)/);
    } finally {
      items.remove();
    }
  }, 60_000);

  it('counts cancelled items apart from failed ones', () => {
    const job = (id: number) => ({ id, label: `i${id}`, command: ['true'], env: {}, shard: { index: 1, count: 1 } });
    const results: JobResult[] = (['passed', 'failed', 'cancelled', 'cancelled'] as const).map((status, i) => ({
      job: job(i + 1),
      status,
      exitCode: null,
      durationMs: 1,
      output: '',
    }));
    const summary = summarize(results, { startedAt: '', durationMs: 5, parallel: 2, machine: '1/1' });
    expect(summary).toMatchObject({ passed: 1, failed: 1, cancelled: 2 });
    expect(formatSummary(summary)).toMatch(/1 passed, 1 failed, 2 cancelled, 4 total/);
  });
});
