// Services, the PostgreSQL preset and the warm pool, against real PostgreSQL.
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createSandbox, postgres, SandboxError } from '../../src/index.js';
import { NODE, ROOT, eventually, processesWith, tempDir, treeDigest } from './support.js';

const home = tempDir('sandbox-run-home-');
const fixture = (name: string) => join(ROOT, 'test/fixtures', name);
beforeAll(() => {
  process.env.SANDBOX_RUN_HOME = home.path;
});
afterAll(() => {
  delete process.env.SANDBOX_RUN_HOME;
  home.remove();
});

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('services', () => {
  it('fails with one line and the log tail when a service exits before it is ready', async () => {
    const error = await createSandbox({
      workdir: 'none',
      services: [{ name: 'broken', command: ['/bin/sh', '-c', 'echo booting; echo "fatal: no config" >&2; exit 3'], ready: { tcp: 7000 } }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxError);
    expect((error as Error).message).toBe('service broken exited with code 3 before it was ready; last lines of /tmp/.sandbox-run/broken.log:\nbooting\nfatal: no config');
  });

  it('refuses a service name that cannot be a file name', async () => {
    await expect(createSandbox({ workdir: 'none', services: [{ name: 'a b;rm', command: ['true'] }] })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
  });

  it('fails when a service is not ready in time', async () => {
    const error = await createSandbox({
      workdir: 'none',
      services: [{ name: 'slow', command: ['/bin/sh', '-c', 'echo waiting; exec sleep 100'], ready: { tcp: 7001 }, startTimeoutMs: 300 }],
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^service slow was not ready after 300 ms; last lines of \/tmp\/.sandbox-run\/slow.log:\nwaiting$/);
    await eventually(() => processesWith('exec sleep 100').length === 0, 2000, 'the slow service to be gone');
  });

  it('probes tcp ports, unix sockets, commands and log lines; offers exports; reports a service that dies', async () => {
    await using sb = await createSandbox({
      workdir: 'none',
      services: [
        { name: 'web', command: [NODE, fixture('listen.cjs'), '8080', 'web'], ready: { tcp: 8080 }, exports: { WEB_URL: 'http://127.0.0.1:8080' } },
        { name: 'sock', command: [NODE, '-e', "require('node:net').createServer().listen('/tmp/s.sock')"], ready: { socket: '/tmp/s.sock' } },
        { name: 'logger', command: ['/bin/sh', '-c', 'echo "ready now"; exec sleep 100'], ready: { log: 'ready now' } },
        { name: 'checked', command: ['/bin/sh', '-c', 'touch /tmp/ok; exec sleep 101'], ready: { command: ['test', '-e', '/tmp/ok'] } },
      ],
    });
    expect(sb.env.WEB_URL).toBe('http://127.0.0.1:8080');
    expect((await sb.exec(NODE, [fixture('connect.cjs'), '8080'])).stdout).toBe('web');
    expect((await sb.exec('/bin/sh', ['-c', 'echo $WEB_URL'])).stdout).toBe('http://127.0.0.1:8080');
    // The port listens a moment before the fixture logs it: poll, don't race.
    await eventually(() => sb.services[0]!.logTail() === 'listening', 2000, 'web to log');
    expect(sb.services.map((s) => s.logTail())).toEqual(['listening', '', 'ready now', '']);
    const error = await sb.exec('/bin/sh', ['-c', 'pkill -f "slee[p] 101"; while pgrep -f "slee[p] 101" >/dev/null; do :; done']).catch((e: unknown) => e);
    expect((error as SandboxError).code).toBe('SERVICE_FAILED');
    expect((error as Error).message).toMatch(/^service checked exited with code 143 while the sandbox was in use/);
  });
});

describe('PostgreSQL preset', () => {
  const preset = postgres({ seed: { sql: [fixture('pg/seed.sql')] } });

  it('gives 10 concurrent sandboxes their own database on one seeded cluster, which stays unchanged', async () => {
    await preset.prepare();
    const before = treeDigest(preset.cluster);
    const sandboxes = await Promise.all(Array.from({ length: 10 }, () => createSandbox({ workdir: 'none', presets: [preset] })));
    try {
      await Promise.all(
        sandboxes.map((sb, i) =>
          query(sb.env.DATABASE_URL!, 'INSERT INTO markers VALUES ($1)', [`sandbox-${i}`]),
        ),
      );
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

describe('warm pool', () => {
  it('hands out pristine sandboxes, replaces them, and leaves nothing behind when closed', async () => {
    const marker = `pool-marker-${process.pid}`;
    const pool = await createPool({
      workdir: 'none',
      size: 2,
      services: [{ name: 'web', command: ['/bin/sh', '-c', `exec ${NODE} ${fixture('listen.cjs')} 8080 pooled; : ${marker}`], ready: { tcp: 8080 } }],
    });
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) {
      await using sb = await pool.acquire();
      pids.add(sb.pid);
      expect((await sb.exec('/bin/sh', ['-c', 'ls /tmp/mine 2>/dev/null; touch /tmp/mine; echo fresh'])).stdout).toBe('fresh');
      expect((await sb.exec(NODE, [fixture('connect.cjs'), '8080'])).stdout).toBe('pooled');
    }
    expect(pids.size).toBe(4);
    await pool.close();
    await eventually(() => processesWith(marker).length === 0, 3000, 'pooled services to stop');
  });

  it('gives PostgreSQL sandboxes from the pool, each with the pristine seed', async () => {
    await using pool = await createPool({ workdir: 'none', size: 2, presets: [postgres({ seed: { sql: [fixture('pg/seed.sql')] } })] });
    for (let i = 0; i < 3; i++) {
      await using sb = await pool.acquire();
      expect(await query(sb.env.DATABASE_URL!, 'SELECT count(*)::int AS n FROM markers')).toEqual([{ n: 0 }]);
      await query(sb.env.DATABASE_URL!, "INSERT INTO markers VALUES ('dirty')");
    }
  });

  it('aborts a pending acquire', async () => {
    await using pool = await createPool({ workdir: 'none', size: 0, max: 1 });
    await using first = await pool.acquire();
    const controller = new AbortController();
    const pending = pool.acquire({ signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect(first.alive).toBe(true);
  });
});
