// examples/postgres, run as a user would: green with a sandbox per test,
// red when its files share one database. A subset of the 40 files keeps it quick.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support.js';

const FILES = ['transfer-01', 'transfer-05', 'order-02', 'order-06', 'reprice-03', 'reprice-07', 'delete-04', 'delete-08'];

async function vitest(mode: 'sandbox' | 'shared'): Promise<{ code: number; output: string }> {
  const bin = join(ROOT, 'node_modules/.bin/vitest');
  try {
    const { stdout, stderr } = await promisify(execFile)(bin, ['run', ...FILES], {
      cwd: join(ROOT, 'examples/postgres'),
      env: { ...process.env, PG_MODE: mode, NO_COLOR: '1' },
      maxBuffer: 64 * 2 ** 20,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe('examples/postgres', () => {
  it('passes with a sandbox per test', { timeout: 180_000 }, async () => {
    const { code, output } = await vitest('sandbox');
    expect(output).toMatch(/Tests\s+16 passed \(16\)/);
    expect(code).toBe(0);
  });

  it('fails when its files share one database', { timeout: 180_000 }, async () => {
    const { code, output } = await vitest('shared');
    expect(output).toMatch(/Tests\s+\d+ failed/);
    expect(code).not.toBe(0);
  });
});
