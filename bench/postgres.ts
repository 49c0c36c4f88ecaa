// A pristine copy of a ~300 MB seeded PostgreSQL cluster, four ways, side by side in one run:
//   CREATE DATABASE .. TEMPLATE (FILE_COPY, WAL_LOG) on one shared server,
//   a cold sandbox (create + PostgreSQL ready + first query),
//   a warm-pool acquire (+ first query).
// Plus memory per idle sandbox (PSS) and extra disk per sandbox after a 1-row update.
//   node --import tsx bench/postgres.ts      (BENCH_SCALE=10 BENCH_RUNS=7 BENCH_WARM_RUNS=25)
// The big-seed row set (a 1 GB pgbench -s 70 cluster: template clones vs each copyUp, overlay, lazy-open,
// pages, reflink, 10 and 50 sandboxes at once) is bench/postgres-big.ts:
//   node --import tsx bench/postgres.ts --big [--ways template,pages] [--at 10,50]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createPool, createSandbox, findPostgresBindir, postgres, type Sandbox, Service } from '../src/index.js';

if (process.argv.includes('--big')) {
  await import('./postgres-big.js');
  process.exit(process.exitCode ?? 0);
}

const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const WARM_RUNS = Number(process.env.BENCH_WARM_RUNS ?? 25);
const FIRST_QUERY = 'SELECT abalance FROM pgbench_accounts WHERE aid = 1';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

async function query(url: string, sql: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function timed(runs: number, body: () => Promise<number | void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const end = await body();
    samples.push((end ?? performance.now()) - start);
  }
  return samples;
}

/** Bytes used on the tmpfs that holds a sandbox's writable layers. */
async function upperBytes(sb: Sandbox): Promise<number> {
  const { stdout } = await sb.exec('df', ['-B1', '--output=used', '/tmp/sandbox-run-postgres']);
  return Number(stdout.trim().split('\n').at(-1));
}

/** PSS of every process in the sandbox's pid namespace, plus the host-side helper processes that supervise it. */
function sandboxPss(sb: Sandbox): number {
  const ns = readlinkSync(`/proc/${sb.pid}/ns/pid`);
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const inside = readlinkSync(`/proc/${entry}/ns/pid`) === ns;
      const helper = readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(String(sb.pid)) && !inside;
      if (!inside && !helper) continue;
      const rollup = readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8');
      total += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch {
      // ended while we looked
    }
  }
  return total;
}

const preset = postgres({ database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: { command: `pgbench -i -q -s ${SCALE}` } });
console.log(`building (or reusing) the pgbench -s ${SCALE} cluster ...`);
const buildStart = performance.now();
await preset.prepare();
const clusterBytes = Number(execFileSync('du', ['-sb', preset.cluster], { encoding: 'utf8' }).split('\t')[0]);
console.log(`cluster: ${mb(clusterBytes)} (prepare ${ms(performance.now() - buildStart)})\n`);

// 1. The conventional way: one server on a copy of the cluster on disk, a template clone per test.
const sharedDir = mkdtempSync(join(tmpdir() === '/tmp' ? '/var/tmp' : tmpdir(), 'sandbox-run-bench-'));
execFileSync('cp', ['-a', join(preset.cluster, 'data'), sharedDir]);
const bindir = findPostgresBindir();
const clone = { FILE_COPY: [] as number[], WAL_LOG: [] as number[] };
{
  await using server = await createSandbox({ workdir: 'none', binds: [{ source: sharedDir }] });
  server.addService(
    await Service.start(server, {
      name: 'postgres',
      command: [join(bindir, 'postgres'), '-D', join(sharedDir, 'data'), '-k', sharedDir, '-c', 'listen_addresses='],
      ready: { log: /ready to accept connections/ },
      stopSignal: 'SIGINT',
    }),
  );
  const admin = new pg.Client({ host: sharedDir, user: 'postgres', database: 'postgres' });
  await admin.connect();
  for (const strategy of ['FILE_COPY', 'WAL_LOG'] as const) {
    clone[strategy] = await timed(RUNS, async () => {
      await admin.query(`CREATE DATABASE clone TEMPLATE bench STRATEGY ${strategy}`);
      await query(`postgresql://postgres@localhost/clone?host=${encodeURIComponent(sharedDir)}`, FIRST_QUERY);
      const end = performance.now();
      await admin.query('DROP DATABASE clone');
      return end;
    });
  }
  await admin.end();
}
rmSync(sharedDir, { recursive: true, force: true });

// 2. A cold sandbox: create, PostgreSQL ready on a copy-on-write view, first query.
const coldReady: number[] = [];
const cold = await timed(RUNS, async () => {
  const start = performance.now();
  const sb = await createSandbox({ workdir: 'none', presets: [preset] });
  coldReady.push(performance.now() - start);
  await query(sb.env.DATABASE_URL!, FIRST_QUERY);
  const end = performance.now();
  await sb.dispose();
  return end;
});

// 3. A warm pool: acquire a ready sandbox; acquire and first query; the same
// with a warm-up that opens pgbench_accounts before the sandbox counts as ready.
async function poolRows(warmup?: (sb: Sandbox) => Promise<unknown>): Promise<{ acquire: number[]; first: number[] }> {
  const acquire: number[] = [];
  const first: number[] = [];
  await using pool = await createPool({ workdir: 'none', size: 2, presets: [preset], ...(warmup ? { warmup } : {}) });
  for (let i = 0; i < WARM_RUNS; i++) {
    await pool.warm();
    const start = performance.now();
    const sb = await pool.acquire();
    acquire.push(performance.now() - start);
    await query(sb.env.DATABASE_URL!, FIRST_QUERY);
    first.push(performance.now() - start);
    await sb.dispose();
  }
  return { acquire, first };
}
const warm = await poolRows();
const prewarmed = await poolRows((sb) => query(sb.env.DATABASE_URL!, FIRST_QUERY));

// 4. Idle cost: PSS of idle sandboxes (PostgreSQL ready), and how their writable layer grows.
const IDLE = 4;
const idle = await Promise.all(Array.from({ length: IDLE }, () => createSandbox({ workdir: 'none', presets: [preset] })));
const pss = median(idle.map(sandboxPss));
const sb = idle[0]!;
const fresh = await upperBytes(sb);
await query(sb.env.DATABASE_URL!, FIRST_QUERY);
const afterRead = await upperBytes(sb);
await query(sb.env.DATABASE_URL!, 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1');
const afterUpdate = await upperBytes(sb);
await query(sb.env.DATABASE_URL!, 'CHECKPOINT');
const afterCheckpoint = await upperBytes(sb);
const other = idle[1]!;
await query(other.env.DATABASE_URL!, 'UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1');
await query(other.env.DATABASE_URL!, 'CHECKPOINT');
const smallUpdate = await upperBytes(other);
await Promise.all(idle.map((s) => s.dispose()));

const fileCopy = median(clone.FILE_COPY);
const rows: [string, number][] = [
  ['CREATE DATABASE TEMPLATE, FILE_COPY (+ first query)', fileCopy],
  ['CREATE DATABASE TEMPLATE, WAL_LOG (+ first query)', median(clone.WAL_LOG)],
  ['cold sandbox: create + PG ready', median(coldReady)],
  ['cold sandbox: create + PG ready + first query', median(cold)],
  ['warm pool: acquire', median(warm.acquire)],
  ['warm pool: acquire + first query', median(warm.first)],
  ['warm pool with warm-up: acquire', median(prewarmed.acquire)],
  ['warm pool with warm-up: acquire + first query', median(prewarmed.first)],
];
console.log(`pristine copy of a ${mb(clusterBytes)} cluster (pgbench -s ${SCALE}), median of ${RUNS} (pool: ${WARM_RUNS})`);
console.log(`first query: ${FIRST_QUERY} (a new connection)`);
console.log(`${'what'.padEnd(54)}${'median'.padStart(11)}${'vs FILE_COPY'.padStart(14)}`);
for (const [name, value] of rows) console.log(`${name.padEnd(54)}${ms(value).padStart(11)}${`${(value / fileCopy).toFixed(3)}x`.padStart(14)}`);
console.log(`\nPSS per idle sandbox (PostgreSQL + init + helpers): ${mb(pss)}`);
console.log(`writable layer (tmpfs) of a sandbox: fresh ${mb(fresh)}; after the first query +${mb(afterRead - fresh)}`);
console.log(`  (PostgreSQL opens relation files read-write, and overlayfs copies a file up on such an open, not on the first write)`);
console.log(`  after a 1-row UPDATE of pgbench_accounts: +${mb(afterUpdate - fresh)}; after CHECKPOINT: +${mb(afterCheckpoint - fresh)}`);
console.log(`  a sandbox that only updates 1 row of pgbench_branches (+ CHECKPOINT): +${mb(smallUpdate - fresh)}`);
