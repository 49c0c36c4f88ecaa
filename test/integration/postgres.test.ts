// The PostgreSQL preset against real PostgreSQL: isolation on one seeded layer, caching, seed errors.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createSandbox, postgres } from '../../src/index.js';
import { ROOT, tempDir, treeDigest, useTempHome } from './support.js';

const home = useTempHome();
const fixture = (name: string) => join(ROOT, 'test/fixtures', name);

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('PostgreSQL preset', () => {
  const preset = postgres({ seed: { sql: [fixture('pg/seed.sql')] } });

  it('gives 10 concurrent sandboxes their own database on one seeded cluster, which stays unchanged', async () => {
    await preset.prepare();
    const before = treeDigest(preset.cluster);
    const sandboxes = await Promise.all(Array.from({ length: 10 }, () => createSandbox({ workdir: 'none', presets: [preset] })));
    try {
      await Promise.all(sandboxes.map((sb, i) => query(sb.env.DATABASE_URL!, 'INSERT INTO markers VALUES ($1)', [`sandbox-${i}`])));
      await Promise.all(sandboxes.map((sb, i) => query(sb.env.DATABASE_URL!, 'UPDATE accounts SET balance = balance - $1 WHERE id = 1', [i + 1])));
      for (const [i, sb] of sandboxes.entries()) {
        expect(await query(sb.env.DATABASE_URL!, 'SELECT sandbox FROM markers')).toEqual([{ sandbox: `sandbox-${i}` }]);
        expect(await query(sb.env.DATABASE_URL!, 'SELECT balance FROM accounts WHERE id = 1')).toEqual([{ balance: 100 - (i + 1) }]);
        // Inside, the same server at 127.0.0.1:5432, and the PG* variables.
        const inside = await sb.exec('psql', ['-h', '127.0.0.1', '-tAc', 'SELECT count(*) FROM accounts']);
        expect(inside.stdout).toBe('2000');
        expect((await sb.exec('/bin/sh', ['-c', 'echo $PGUSER $PGDATABASE $PGPORT'])).stdout).toBe('postgres app 5432');
      }
    } finally {
      await Promise.all(sandboxes.map((sb) => sb.dispose()));
    }
    expect(treeDigest(preset.cluster)).toBe(before);
    expect(readdirSync(join(home.path, 'sockets'))).toEqual([]);
  });

  it("keeps each sandbox's database to itself: a sibling cannot reach its socket, the host can", async () => {
    await preset.prepare();
    // Socket directories in a home outside /tmp, where only the sandbox's own masking can hide them.
    const sockets = mkdtempSync(join(userInfo().homedir, '.sandbox-run-test-home-'));
    process.env.SANDBOX_RUN_HOME = sockets;
    try {
      await using a = await createSandbox({ workdir: 'none', presets: [preset] });
      await using b = await createSandbox({ workdir: 'none', presets: [preset] });
      expect(a.env.PGHOST!.startsWith(sockets)).toBe(true);
      await query(a.env.DATABASE_URL!, "INSERT INTO markers VALUES ('a')");
      const attempt = await b.exec('psql', ['-h', a.env.PGHOST!, '-tAc', 'SELECT count(*) FROM markers']);
      expect(attempt.exitCode).not.toBe(0);
      expect(attempt.stderr).toMatch(/No such file or directory/);
      expect((await b.exec('psql', ['-tAc', 'SELECT count(*) FROM markers'])).stdout).toBe('0'); // its own
      expect(await query(a.env.DATABASE_URL!, 'SELECT sandbox FROM markers')).toEqual([{ sandbox: 'a' }]);
    } finally {
      process.env.SANDBOX_RUN_HOME = home.path;
      rmSync(sockets, { recursive: true, force: true });
    }
  });

  it('builds the seeded cluster once per content', async () => {
    await preset.prepare();
    const again = postgres({ seed: { sql: [fixture('pg/seed.sql')] } });
    await again.prepare();
    expect(again.cluster).toBe(preset.cluster);
    const other = postgres({ seed: { sql: [fixture('pg/seed.sql')], command: 'psql -c "INSERT INTO markers VALUES (\'seeded\')"' } });
    await other.prepare();
    expect(other.cluster).not.toBe(preset.cluster);
    await using sb = await createSandbox({ workdir: 'none', presets: [other] });
    expect(await query(sb.env.DATABASE_URL!, 'SELECT sandbox FROM markers')).toEqual([{ sandbox: 'seeded' }]);
  });

  it('says what failed when the seed is broken', async () => {
    const bad = tempDir();
    try {
      const file = join(bad.path, 'bad.sql');
      (await import('node:fs')).writeFileSync(file, 'CREATE TABLE x (;');
      await expect(postgres({ seed: { sql: [file] } }).prepare()).rejects.toThrow(/postgres preset: seed .*bad\.sql failed \(exit 3\):\n.*syntax error/s);
    } finally {
      bad.remove();
    }
  });
});
