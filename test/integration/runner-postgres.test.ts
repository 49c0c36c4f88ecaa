// The flagship: 40 test files that mutate the same seeded rows, each in its
// own sandbox with its own PostgreSQL (green), versus one shared database (red).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox, postgres } from '../../src/index.js';
import { CLI, NODE, ROOT, tempDir } from './support.js';

const example = join(ROOT, 'examples/postgres-node');
const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());

describe('examples/postgres-node', () => {
  it('passes with a sandbox per file, several at a time', async () => {
    const json = join(home.path, 'summary.json');
    const result = await execa(
      NODE,
      [CLI, '--each', 'tests/*.test.mjs', '--parallel', '4', '--output', 'quiet', '--json', json, '--', 'node', '--test', '{}'],
      {
        cwd: example,
        reject: false,
        env: { SANDBOX_RUN_HOME: home.path, CI: '1' },
      },
    );
    const summary = JSON.parse(readFileSync(json, 'utf8')) as { passed: number; failed: number };
    expect(summary).toMatchObject({ passed: 40, failed: 0 });
    expect(result.exitCode).toBe(0);
  }, 300_000);

  it('fails against one shared database', async () => {
    process.env.SANDBOX_RUN_HOME = home.path;
    try {
      const seed = ['schema.sql', 'seed.sql'].map((file) => join(example, 'db', file));
      await using shared = await createSandbox({ workdir: 'none', presets: [postgres({ seed: { sql: seed } })] });
      const files = Array.from({ length: 40 }, (_, i) => `tests/transfer-${String(i + 1).padStart(2, '0')}.test.mjs`);
      const results = await Promise.all(
        files.map((file) => execa(NODE, ['--test', file], { cwd: example, reject: false, env: { DATABASE_URL: shared.env.DATABASE_URL! } })),
      );
      expect(results.filter((r) => r.exitCode !== 0).length).toBeGreaterThan(0);
    } finally {
      delete process.env.SANDBOX_RUN_HOME;
    }
  }, 300_000);
});
