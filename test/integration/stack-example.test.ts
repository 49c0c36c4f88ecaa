// examples/stack as a user runs it: PostgreSQL, Redis and the app server in
// every sandbox on their fixed ports, three test files two at a time, each
// expecting the seed (two of them would fail on a shared stack).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { findRedisBinaries } from '../../src/presets/redis/server.js';
import { needServer } from './servers.js';
import { CLI, NODE, ROOT, useTempHome } from './support.js';

useTempHome();
beforeEach((ctx) => needServer(ctx, () => findRedisBinaries()));

async function sandboxRun(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(NODE, [CLI, ...args], { cwd: join(ROOT, 'examples/stack'), env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe('examples/stack', () => {
  it('passes with a stack per test file, each on its fixed ports', { timeout: 180_000 }, async () => {
    const { code, output } = await sandboxRun(['--parallel', '2', '--no-timings', '--each', 'tests/*.test.mjs', '--', 'node', '--test', '{}']);
    expect(output).toMatch(/3 passed, 0 failed, 3 total/);
    expect(code).toBe(0);
  });

  it('fails when the files share one stack', { timeout: 180_000 }, async () => {
    // One sandbox runs all three files in turn: the second sees the first's visits and orders.
    const { code, output } = await sandboxRun(['--no-timings', '--', 'node', '--test', '--test-concurrency=1', 'tests/']);
    expect(output).toMatch(/# fail [1-9]/);
    expect(code).not.toBe(0);
  });
});
