// The warm pool against the real kernel and real PostgreSQL: acquire,
// dispose, replace, abort, close, and nothing left behind, even by a runner
// killed with SIGKILL.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPool, openStore, postgres, type ServiceSpec } from '../../src/index.js';
import { eventually, NODE, processesWith, ROOT, tempDir, useTempHome } from './support.js';

const home = useTempHome();
const fixture = (name: string) => join(ROOT, 'test/fixtures', name);

/** A service whose command line carries `marker`, so the test can look for its processes on the host. */
const web = (marker: string): ServiceSpec => ({
  name: 'web',
  command: ['/bin/sh', '-c', `exec ${NODE} ${fixture('listen.cjs')} 8080 ${marker}`],
  ready: { tcp: 8080 },
});

describe('warm pool', () => {
  it('acquires, replaces in the background, and closes leaving no process behind', async () => {
    const marker = `pool-${process.pid}-a`;
    const pool = await createPool({ workdir: 'none', size: 2, services: [web(marker)] });
    await pool.warm();
    expect(pool.idle).toBe(2);
    expect(processesWith(marker).length).toBeGreaterThan(0);
    const first = await pool.acquire();
    expect((await first.exec(NODE, [fixture('connect.cjs'), '8080'])).stdout).toBe(marker);
    await first.exec('/bin/sh', ['-c', 'echo dirty > /tmp/state']);
    await first.dispose();
    await pool.warm();
    expect(pool.idle).toBe(2);
    await using second = await pool.acquire();
    expect(second.pid).not.toBe(first.pid);
    expect((await second.exec('/bin/sh', ['-c', 'cat /tmp/state 2>&1 || true'])).stdout).toMatch(/No such file/);
    await pool.close();
    expect(second.alive).toBe(false);
    expect(processesWith(marker)).toEqual([]);
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('queues acquires beyond max, aborts a waiting one, and leaves a handed-out sandbox alone on a later abort', async () => {
    await using pool = await createPool({ workdir: 'none', size: 1, max: 1 });
    const controller = new AbortController();
    const held = await pool.acquire({ signal: controller.signal });
    const waiting = new AbortController();
    const pending = pool.acquire({ signal: waiting.signal });
    waiting.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED', message: 'acquire was aborted' });
    // The first acquire's signal fires late: its sandbox must not care.
    controller.abort();
    expect((await held.exec('/bin/echo', ['still here'])).stdout).toBe('still here');
    // The queue moves on once the slot is free.
    const next = pool.acquire();
    await held.dispose();
    await using sb = await next;
    expect(sb.alive).toBe(true);
  });

  it('aborts an acquire that waits for a sandbox to become ready, keeping that sandbox for the next one', async () => {
    // Sandboxes become ready only while the gate file exists on the host.
    const gate = tempDir();
    const open = join(gate.path, 'open');
    try {
      writeFileSync(open, '');
      await using pool = await createPool({
        workdir: 'none',
        size: 0,
        max: 1,
        binds: [{ source: gate.path, readonly: true }],
        services: [
          {
            name: 'gated',
            command: ['/bin/sh', '-c', `while [ ! -e ${open} ]; do sleep 0.01; done; touch /tmp/up; exec sleep 100`],
            ready: { command: ['test', '-e', '/tmp/up'] },
          },
        ],
      });
      await (await pool.acquire()).dispose(); // the slot thread is up: the next acquire only waits for its sandbox
      rmSync(open);
      const controller = new AbortController();
      const pending = pool.acquire({ signal: controller.signal });
      await eventually(() => processesWith(open).length > 0, 10_000, 'the gated sandbox to start');
      controller.abort();
      await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
      expect(pool.idle).toBe(1); // the starting sandbox went back into the pool
      writeFileSync(open, '');
      await using sb = await pool.acquire();
      expect((await sb.exec('test', ['-e', '/tmp/up'])).exitCode).toBe(0);
    } finally {
      gate.remove();
    }
  });

  it('does not hand out a sandbox whose service died while it waited', async () => {
    const marker = `pool-${process.pid}-b`;
    await using pool = await createPool({ workdir: 'none', size: 1, services: [web(marker)] });
    await pool.warm();
    // Kill the service (and the helper that joined it in) and wait until it is gone:
    // killing the helper alone ends the service a moment later, racing the acquire.
    // A dying process loses its command line before it stops running, so wait
    // for the pids themselves to be reaped, not for the marker to vanish.
    const pids = processesWith(marker);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await eventually(() => pids.every((pid) => !existsSync(`/proc/${pid}`)), 2000, 'the service to die');
    await using sb = await pool.acquire();
    expect(sb.services[0]!.running).toBe(true);
    expect((await sb.exec(NODE, [fixture('connect.cjs'), '8080'])).stdout).toBe(marker);
  });

  it('rejects acquires waiting at close and disposes handed-out sandboxes', async () => {
    const pool = await createPool({ workdir: 'none', size: 0, max: 1 });
    const held = await pool.acquire();
    const waiting = expect(pool.acquire()).rejects.toMatchObject({ code: 'ABORTED' });
    await pool.close();
    await waiting;
    expect(held.alive).toBe(false);
  });

  it('rejects a pool whose service cannot start with the service error at acquire', async () => {
    await using pool = await createPool({
      workdir: 'none',
      size: 1,
      services: [{ name: 'broken', command: ['/bin/sh', '-c', 'echo no config >&2; exit 2'], ready: { tcp: 1 } }],
    });
    await expect(pool.acquire()).rejects.toThrow(/^service broken exited with code 2 before it was ready; last lines of .*\nno config$/);
  });

  it('runs the warm-up before a sandbox counts as ready, and reports a failing one at acquire', async () => {
    await using pool = await createPool({ workdir: 'none', size: 1, warmup: (sb) => sb.exec('/bin/sh', ['-c', 'echo warmed > /tmp/warm']) });
    await pool.warm();
    await using sb = await pool.acquire();
    expect((await sb.exec('cat', ['/tmp/warm'])).stdout).toBe('warmed');
    await using failing = await createPool({ workdir: 'none', size: 1, warmup: async () => Promise.reject(new Error('warm-up failed')) });
    await expect(failing.acquire()).rejects.toThrow('warm-up failed');
  });

  it('mounts layers from the store copy-on-write and leases them while open', async () => {
    const src = tempDir();
    try {
      mkdirSync(join(src.path, 'fixtures'));
      writeFileSync(join(src.path, 'fixtures/data.txt'), 'pristine\n');
      const store = await openStore({ dir: join(home.path, 'store') });
      const layer = await store.snapshot(src.path, { name: 'pool-fixtures' });
      const pool = await createPool({ workdir: 'none', size: 1, layers: [{ layer: 'pool-fixtures', target: '/tmp/data' }], store });
      expect(readdirSync(join(store.dir, 'leases')).some((name) => name.startsWith(layer.digest.slice(7)))).toBe(true);
      for (let i = 0; i < 2; i++) {
        await using sb = await pool.acquire();
        expect((await sb.exec('/bin/sh', ['-c', 'cat /tmp/data/fixtures/data.txt; echo changed > /tmp/data/fixtures/data.txt'])).stdout).toBe('pristine');
      }
      await pool.close();
      expect(readdirSync(join(store.dir, 'leases'))).toEqual([]);
      expect(await store.get('pool-fixtures')).toMatchObject({ digest: layer.digest });
    } finally {
      src.remove();
    }
  });
});

describe('warm pool with PostgreSQL', () => {
  const seed = fixture('pg/seed.sql');

  it('gives every acquire the pristine seed; a host-side pg client reaches it through the socket directory', async () => {
    await using pool = await createPool({ workdir: 'none', size: 2, presets: [postgres({ seed: { sql: [seed] } })] });
    for (let i = 0; i < 3; i++) {
      await using sb = await pool.acquire();
      const client = new pg.Client(sb.env.DATABASE_URL);
      await client.connect();
      try {
        expect((await client.query('SELECT count(*)::int AS n FROM markers')).rows).toEqual([{ n: 0 }]);
        await client.query("INSERT INTO markers VALUES ('dirty')");
        await client.query('UPDATE accounts SET balance = 0');
      } finally {
        await client.end();
      }
    }
    await pool.close();
    expect(readdirSync(join(home.path, 'sockets'))).toEqual([]);
  });

  it('leaves no process and, by the next start, no socket directory when the runner is killed with SIGKILL', async () => {
    const marker = `killed-runner-${process.pid}`;
    await postgres({ seed: { sql: [seed] } }).prepare(); // the child finds it cached
    const script = `
      import { createPool, postgres } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
      const pool = await createPool({ workdir: 'none', size: 2, presets: [postgres({ seed: { sql: [${JSON.stringify(seed)}] } })],
        services: [{ name: 'marker', command: ['/bin/sh', '-c', 'sleep 1000; : ${marker}'] }] });
      await pool.warm();
      const sb = await pool.acquire();
      console.log(sb.env.PGHOST);
      setInterval(() => {}, 1000);`;
    const child = spawn(NODE, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } });
    const socketDir = await new Promise<string>((resolve) => child.stdout.once('data', (chunk) => resolve(String(chunk).trim())));
    expect(existsSync(join(socketDir, '.s.PGSQL.5432'))).toBe(true);
    expect(processesWith(marker).length).toBeGreaterThanOrEqual(3);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await eventually(() => processesWith(marker).length === 0, 5000, 'the killed runner’s sandboxes to die');
    await eventually(() => processesWith(socketDir).length === 0, 5000, 'its PostgreSQL servers to die');
    // Reaped: until then its pid still answers kill(pid, 0) as a zombie, and its directory counts as in use.
    await exited;
    // The next sandbox-run process sweeps directories of dead runners.
    await using pool = await createPool({ workdir: 'none', size: 0, presets: [postgres({ seed: { sql: [seed] } })] });
    await using sb = await pool.acquire();
    expect(existsSync(socketDir)).toBe(false);
    expect(sb.env.PGHOST).not.toBe(socketDir);
  });
});
