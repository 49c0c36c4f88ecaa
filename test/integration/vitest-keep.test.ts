// Post-mortem from the Vitest pool: with SANDBOX_RUN_KEEP_FAILED=1 the sandbox
// of a failed test file is kept whole (its PostgreSQL data too) and opened
// again with `sandbox-run open`; a passing file's is not. Real Vitest, real
// PostgreSQL 15, the built package (dist/) as a user's project imports it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, NODE, processesWith, ROOT, tempDir } from './support.js';

const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');
const FIXTURE = join(ROOT, 'test/fixtures/vitest-keep');
const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());

const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(VITEST|TEST$|NODE_ENV$|SANDBOX_RUN_HOME$)/.test(key)));
const env = { ...clean, SANDBOX_RUN_HOME: home.path, NO_COLOR: '1', CI: '1' };
const cli = (args: string[]) => execa(NODE, [CLI, ...args], { cwd: FIXTURE, env, extendEnv: false, reject: false });

describe('the Vitest pool keeps a failed file sandbox', { timeout: 180_000 }, () => {
  let kept = '';

  it('keeps the failed file only, says how to open it, and leaves nothing else behind', async () => {
    const run = await execa(NODE, [VITEST, 'run', '--root', FIXTURE, '--maxWorkers', '2'], {
      cwd: FIXTURE,
      env: { ...env, SANDBOX_RUN_KEEP_FAILED: '1' },
      extendEnv: false,
      reject: false,
      all: true,
    });
    expect(run.exitCode, run.all).toBe(1);
    const lines = [...run.all.matchAll(/kept the sandbox of (\S+): sandbox-run open (\S+)/g)];
    expect(
      lines.map((m) => m[1]),
      run.all,
    ).toEqual(['fails.test.ts']);
    kept = lines[0]![2]!;
    expect(kept.startsWith(join(home.path, 'runs'))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(kept, 'kept.json'), 'utf8'));
    expect(manifest).toMatchObject({ label: 'fails.test.ts', status: 'failed', command: ['vitest', 'run', 'fails.test.ts'] });
    expect(manifest.services.map((s: { name: string }) => s.name)).toEqual(['postgres']);
    expect(readFileSync(join(kept, 'logs/postgres.log'), 'utf8')).toMatch(/database system is shut down/);
    // The failing file's write stayed in the kept layer, not on the host.
    expect(existsSync(join(FIXTURE, 'left-behind.txt'))).toBe(false);
    for (const dir of ['keeping', 'uppers']) expect(existsSync(join(home.path, dir)) ? readdirSync(join(home.path, dir)) : []).toEqual([]);
    expect(processesWith(home.path)).toEqual([]);
  });

  it('opens the kept database and files with the failed test environment', async () => {
    const rows = await cli(['open', kept, '--', 'psql', '-tAc', 'select body from notes order by id']);
    expect(rows.exitCode, rows.stderr).toBe(0);
    // The seed and the failed file's row; not the passing file's.
    expect(rows.stdout.trim().split('\n')).toEqual(['seeded', 'left behind']);
    const file = await cli(['open', kept, '--', 'cat', 'left-behind.txt']);
    expect(file.stdout).toBe('by the failing file');
    const diff = await cli(['diff', kept]);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/left-behind\.txt/);
  });
});
