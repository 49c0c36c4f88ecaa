// The parallel runner as users run it: the built CLI on real example projects.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, eventually, NODE, processesWith, ROOT, tempDir } from './support.js';

const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());
const cli = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  execa(NODE, [CLI, ...args], { cwd, reject: false, env: { SANDBOX_RUN_HOME: home.path, CI: '1', ...env } });

interface Summary {
  passed: number;
  failed: number;
  results: { label: string; status: string; exitCode: number | null; kept?: string }[];
}
const readSummary = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Summary;

describe('examples', () => {
  for (const example of ['fixed-port', 'fixed-paths']) {
    it(`${example}: every file passes in its own sandbox, all at once`, async () => {
      const json = join(home.path, `${example}.json`);
      const result = await cli(['--each', 'tests/*.test.mjs', '--parallel', '12', '--json', json, '--', 'node', '{}'], join(ROOT, 'examples', example));
      expect(result.exitCode).toBe(0);
      const summary = readSummary(json);
      expect(summary).toMatchObject({ passed: 12, failed: 0 });
    });
  }
});

describe('shard mode', () => {
  it('gives each sandbox its shard and prints each output whole, never interleaved', async () => {
    const script = 'for i in $(seq 1 40); do echo "out-$SANDBOX_SHARD_INDEX-$i"; done';
    const result = await cli(['--parallel', '4', '--', 'sh', '-c', script], ROOT);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line.startsWith('out-'));
    expect(lines).toHaveLength(160);
    // Grouped: each shard's 40 lines are contiguous and in order.
    for (let shard = 0; shard < 4; shard++) {
      const block = lines.slice(shard * 40, shard * 40 + 40);
      const index = block[0]!.split('-')[1];
      expect(block).toEqual(Array.from({ length: 40 }, (_, i) => `out-${index}-${i + 1}`));
    }
    expect(new Set(lines.map((line) => line.split('-')[1]))).toEqual(new Set(['1', '2', '3', '4']));
    expect(result.stderr).toMatch(/each sandbox gets SANDBOX_SHARD=i\/N/);
  });

  it('composes --shard k/M with --parallel: every global shard runs exactly once', async () => {
    const seen: string[] = [];
    for (const k of [1, 2]) {
      const json = join(home.path, `compose-${k}.json`);
      const result = await cli(['--shard', `${k}/2`, '--parallel', '3', '--json', json, '--', 'sh', '-c', 'echo $SANDBOX_SHARD'], ROOT);
      expect(result.exitCode).toBe(0);
      seen.push(...readSummary(json).results.map((r) => r.label));
    }
    expect(seen.sort()).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6', '6/6'].map((s) => `shard ${s}`));
  });
});

describe('queue mode', () => {
  it('runs every item exactly once across machines', async () => {
    const project = tempDir();
    try {
      for (let i = 0; i < 7; i++) writeFileSync(join(project.path, `item-${i}.txt`), String(i));
      const seen: string[] = [];
      for (const k of [1, 2, 3]) {
        const json = join(project.path, `summary-${k}.json`);
        const result = await cli(['--each', '*.txt', '--shard', `${k}/3`, '--parallel', '2', '--json', json, '--', 'cat', '{}'], project.path);
        expect(result.exitCode).toBe(0);
        seen.push(...readSummary(json).results.map((r) => r.label));
      }
      expect(seen.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `item-${i}.txt`));
    } finally {
      project.remove();
    }
  });
});

describe('failures', () => {
  it('exits 1, keeps the failed sandbox writable layer, throws away the passed one', async () => {
    const project = tempDir();
    try {
      writeFileSync(join(project.path, 'original.txt'), 'x');
      const json = join(project.path, 'summary.json');
      const script = 'echo "written by $SANDBOX_SHARD" > written.txt; rm original.txt; test "$SANDBOX_SHARD_INDEX" = 1';
      // --no-timings: nothing of sandbox-run's own (.sandbox-run/) lands in the project either.
      const result = await cli(['--parallel', '2', '--keep-failed', '--no-timings', '--json', json, '--', 'sh', '-c', script], project.path);
      expect(result.exitCode).toBe(1);
      const summary = readSummary(json);
      const failed = summary.results.find((r) => r.status === 'failed')!;
      expect(failed).toMatchObject({ label: 'shard 2/2', exitCode: 1 });
      expect(readFileSync(join(failed.kept!, 'upper', 'written.txt'), 'utf8')).toBe('written by 2/2\n');
      expect(summary.results.find((r) => r.status === 'passed')!.kept).toBeUndefined();
      expect(result.stdout).toContain(`sandbox-run diff ${failed.kept}`);
      // The host's working directory is untouched.
      expect(readdirSync(project.path).sort()).toEqual(['original.txt', 'summary.json']);
    } finally {
      project.remove();
    }
  });

  it('stops at the first failure with --fail-fast', async () => {
    const project = tempDir();
    try {
      for (let i = 0; i < 6; i++) writeFileSync(join(project.path, `${i}.sh`), i === 0 ? 'exit 3' : 'exit 0');
      const json = join(project.path, 'summary.json');
      const result = await cli(['--each', '*.sh', '--parallel', '1', '--fail-fast', '--json', json, '--', 'sh', '{}'], project.path);
      expect(result.exitCode).toBe(1);
      expect(readSummary(json).results.map((r) => r.status)).toEqual(['failed', 'cancelled', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);
    } finally {
      project.remove();
    }
  });

  it('stops a sandbox that runs past --timeout', async () => {
    const json = join(home.path, 'timeout.json');
    const result = await cli(['--parallel', '1', '--timeout', '300ms', '--json', json, '--', 'sleep', '30'], ROOT);
    expect(result.exitCode).toBe(1);
    expect(readSummary(json).results[0]!.status).toBe('timed out');
  });

  it('reports a config error with the key and exits 2', async () => {
    const project = tempDir();
    try {
      writeFileSync(join(project.path, 'sandbox.config.json'), JSON.stringify({ parallel: 'many' }));
      const result = await cli(['--parallel', '--', 'true'], project.path);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(/sandbox\.config\.json: parallel: Invalid input: expected number/);
    } finally {
      project.remove();
    }
  });
});

describe('interruption', () => {
  const startRunner = (marker: string) => {
    const runner = execa(NODE, [CLI, '--parallel', '3', '--replicate', '--output', 'prefixed', '--', 'sh', '-c', `echo ready; sleep 100; : ${marker}`], {
      cwd: ROOT,
      reject: false,
      env: { SANDBOX_RUN_HOME: home.path, CI: '1' },
    });
    let ready = 0;
    const allReady = new Promise<void>((resolve) =>
      runner.stdout!.on('data', (chunk: Buffer) => {
        ready += (String(chunk).match(/\] ready$/gm) ?? []).length;
        if (ready === 3) resolve();
      }),
    );
    return { runner, allReady };
  };

  it('Ctrl-C stops every sandbox and exits 130', async () => {
    const marker = `ctrl-c-${process.pid}`;
    const { runner, allReady } = startRunner(marker);
    await allReady;
    runner.kill('SIGINT');
    expect((await runner).exitCode).toBe(130);
    await eventually(() => processesWith(marker).length === 0, 3000, 'sandboxes to stop');
  });

  it('SIGKILL of the runner with 10 sandboxes running services leaves nothing after one second', async () => {
    const marker = `sigkill-services-${process.pid}`;
    const project = tempDir();
    try {
      // Each sandbox runs a service (readiness by its log line) and a job that says when it runs.
      const service = { name: 'svc', command: ['/bin/sh', '-c', `echo up; sleep 1000; : ${marker}`], ready: { log: 'up' } };
      writeFileSync(join(project.path, 'sandbox.config.json'), JSON.stringify({ services: [service] }));
      const runner = execa(NODE, [CLI, '--parallel', '10', '--replicate', '--output', 'prefixed', '--', 'sh', '-c', `echo ready; sleep 1000; : ${marker}`], {
        cwd: project.path,
        reject: false,
        env: { SANDBOX_RUN_HOME: home.path, CI: '1' },
      });
      let ready = 0;
      await new Promise<void>((resolve) =>
        runner.stdout!.on('data', (chunk: Buffer) => {
          ready += (String(chunk).match(/\] ready$/gm) ?? []).length;
          if (ready === 10) resolve();
        }),
      );
      expect(processesWith(marker).length).toBeGreaterThanOrEqual(20);
      runner.kill('SIGKILL');
      await runner;
      await eventually(() => processesWith(marker).length === 0, 1000, 'services and jobs to die within a second');
    } finally {
      project.remove();
    }
  });

  it('SIGKILL of the runner leaves nothing running', async () => {
    const marker = `sigkill-runner-${process.pid}`;
    const runs = () => (existsSync(join(home.path, 'runs')) ? readdirSync(join(home.path, 'runs')) : []);
    const runsBefore = runs();
    const { runner, allReady } = startRunner(marker);
    await allReady;
    expect(processesWith(marker).length).toBeGreaterThanOrEqual(3);
    runner.kill('SIGKILL');
    await runner;
    await eventually(() => processesWith(marker).length === 0, 2000, 'sandboxes to die with the runner');
    expect(runs()).toEqual(runsBefore);
  });
});
