import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeOptions } from '../../src/config/apply.js';
import { configSchema, describeIssues } from '../../src/config/schema.js';
import type { JobResult } from '../../src/runner/job.js';
import { planJobs } from '../../src/runner/plan.js';
import { itemsForMachine, parseShard, sandboxShards, shardFromEnv } from '../../src/runner/shard.js';
import { exitCodeOf, formatSummary, summarize } from '../../src/runner/summary.js';
import { detectTestRunner, substitute, withShardFlag } from '../../src/runner/test-command.js';
import { tempDir } from '../integration/support.js';

describe('shards', () => {
  it('parses k/M and refuses nonsense', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/4', '5/4', '1/0', 'a/b', '2']) expect(() => parseShard(bad)).toThrow(/expected k\/M/);
  });

  it('reads GitLab and Kubernetes Indexed Job variables', () => {
    expect(shardFromEnv({ CI_NODE_INDEX: '2', CI_NODE_TOTAL: '3' })).toEqual({ index: 2, count: 3 });
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '0', SANDBOX_RUN_SHARD_COUNT: '4' })).toEqual({ index: 1, count: 4 });
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '0' })).toThrow(/SANDBOX_RUN_SHARD_COUNT/);
    expect(shardFromEnv({})).toBeUndefined();
  });

  it('composes machines and sandboxes so every global shard runs exactly once', () => {
    const all = [1, 2, 3].flatMap((k) => sandboxShards({ index: k, count: 3 }, 4));
    expect(all.map((s) => s.count)).toEqual(Array(12).fill(12));
    expect(all.map((s) => s.index)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('splits queue items across machines without overlap or loss', () => {
    const items = Array.from({ length: 10 }, (_, i) => `f${i}`);
    const parts = [1, 2, 3].map((k) => itemsForMachine(items, { index: k, count: 3 }));
    expect(parts.flat().sort()).toEqual([...items].sort());
    expect(parts.map((p) => p.length)).toEqual([4, 3, 3]);
  });
});

describe('test runner detection', () => {
  const project = tempDir();
  afterAll(() => project.remove());
  writeFileSync(
    join(project.path, 'package.json'),
    JSON.stringify({ scripts: { test: 'NODE_ENV=test vitest run', e2e: 'playwright test', both: 'tsc && vitest', unit: 'jest --ci' } }),
  );

  it.each([
    [['vitest', 'run'], 'vitest', ['vitest', 'run', '--shard=2/4']],
    [['npx', 'jest'], 'jest', ['npx', 'jest', '--shard=2/4']],
    [['npm', 'test'], 'vitest', ['npm', 'test', '--', '--shard=2/4']],
    [['npm', 'run', 'e2e'], 'playwright', ['npm', 'run', 'e2e', '--', '--shard=2/4']],
    [['npm', 'run', 'e2e', '--', '--headed'], 'playwright', ['npm', 'run', 'e2e', '--', '--headed', '--shard=2/4']],
    [['pnpm', 'unit'], 'jest', ['pnpm', 'unit', '--shard=2/4']],
    [['yarn', 'test'], 'vitest', ['yarn', 'test', '--shard=2/4']],
  ])('%j runs %s', (command, runner, sharded) => {
    const detection = detectTestRunner(command, project.path);
    expect(detection?.runner).toBe(runner);
    expect(withShardFlag(command, detection!, '2/4')).toEqual(sharded);
  });

  it.each([[['make', 'test']], [['npm', 'run', 'missing']]])('leaves %j alone', (command) => {
    expect(detectTestRunner(command, project.path)).toBeUndefined();
  });

  it('substitutes {shard} and {}', () => {
    expect(substitute(['run', '--part={shard}', '{}'], { shard: '1/2', item: 'a.test.ts' })).toEqual(['run', '--part=1/2', 'a.test.ts']);
  });
});

describe('planJobs', () => {
  const project = tempDir();
  afterAll(() => project.remove());
  mkdirSync(join(project.path, 'tests'));
  for (const name of ['c', 'a', 'b']) writeFileSync(join(project.path, 'tests', `${name}.test.js`), '');

  it('gives each sandbox its shard variables', async () => {
    const { jobs } = await planJobs({ command: ['sh', 'run.sh', '{shard}'], cwd: project.path, parallel: 2, machine: { index: 2, count: 2 } });
    expect(jobs.map((j) => [j.label, j.command, j.env])).toEqual([
      ['shard 3/4', ['sh', 'run.sh', '3/4'], { SANDBOX_SHARD: '3/4', SANDBOX_SHARD_INDEX: '3', SANDBOX_SHARD_COUNT: '4', SANDBOX_WORKER_ID: '1' }],
      ['shard 4/4', ['sh', 'run.sh', '4/4'], { SANDBOX_SHARD: '4/4', SANDBOX_SHARD_INDEX: '4', SANDBOX_SHARD_COUNT: '4', SANDBOX_WORKER_ID: '2' }],
    ]);
  });

  it('gives every item its own job, sorted, {} replaced or appended', async () => {
    const placeholder = await planJobs({ command: ['node', '{}'], cwd: project.path, parallel: 2, machine: { index: 1, count: 1 }, each: 'tests/*.js' });
    expect(placeholder.jobs.map((j) => j.command)).toEqual([
      ['node', 'tests/a.test.js'],
      ['node', 'tests/b.test.js'],
      ['node', 'tests/c.test.js'],
    ]);
    const appended = await planJobs({ command: ['node'], cwd: project.path, parallel: 2, machine: { index: 2, count: 2 }, each: 'tests/*.js' });
    expect(appended.jobs.map((j) => j.command)).toEqual([['node', 'tests/b.test.js']]);
  });
});

describe('summary', () => {
  const job = (id: number) => ({ id, label: `shard ${id}/2`, command: ['x'], env: {}, shard: { index: id, count: 2 } });
  const result = (id: number, status: JobResult['status'], exitCode: number | null): JobResult => ({
    job: job(id),
    status,
    exitCode,
    durationMs: 1500,
    output: '',
  });

  it('exits 0 when all pass, 1 on failures, 125 when a sandbox could not start', () => {
    expect(exitCodeOf([result(1, 'passed', 0)])).toBe(0);
    expect(exitCodeOf([result(1, 'passed', 0), result(2, 'failed', 3)])).toBe(1);
    expect(exitCodeOf([result(1, 'failed', 3), result(2, 'setup failed', null)])).toBe(125);
  });

  it('prints a table', () => {
    const summary = summarize([result(1, 'passed', 0), { ...result(2, 'failed', 1), kept: '/runs/2' }], {
      startedAt: 'now',
      durationMs: 3000,
      parallel: 2,
      machine: '1/1',
    });
    expect(formatSummary(summary).split('\n')).toEqual([
      '#  SHARD      STATUS  TIME  EXIT',
      '1  shard 1/2  passed  1.5s  0',
      '2  shard 2/2  failed  1.5s  1',
      'kept #2: sandbox-run open /runs/2   (what it changed: sandbox-run diff /runs/2)',
      '1 passed, 1 failed, 2 total in 3.0s (2 at a time)',
    ]);
  });
});

describe('config', () => {
  it('names the key and what is wrong', () => {
    const parsed = configSchema.safeParse({ parallel: 0, sandbox: { network: 'wide', overlays: [{ lower: '/a', target: 'rel' }] }, typo: 1 });
    expect(parsed.success).toBe(false);
    const message = describeIssues(parsed.error!);
    expect(message).toMatch(/parallel: /);
    expect(message).toMatch(/sandbox\.network: /);
    expect(message).toMatch(/sandbox\.overlays\.0\.target: must be an absolute path/);
    expect(message).toMatch(/Unrecognized key: "typo"/);
  });

  it('lets flags override single values and adds up lists', () => {
    const project = tempDir();
    try {
      const merged = mergeOptions(
        {
          path: join(project.path, 'sandbox.config.ts'),
          config: { sandbox: { network: 'host', hostname: 'cfg', tmpfs: ['/a'] }, env: { A: '1' }, outputs: ['coverage'] },
        },
        { hostname: 'flag', tmpfs: ['/b'], env: { B: '2' } },
      );
      expect(merged).toMatchObject({ network: 'host', hostname: 'flag', tmpfs: ['/a', '/b'], env: { A: '1', B: '2' } });
      expect(merged.binds).toEqual([{ source: join(project.path, 'coverage'), target: join(project.path, 'coverage') }]);
    } finally {
      project.remove();
    }
  });
});
