// Big seed: a 1 GB cluster (pgbench -i -s 70), N sandboxes at once, side by side in one run:
//   CREATE DATABASE .. TEMPLATE .. STRATEGY FILE_COPY on one shared server (one clone per "sandbox"),
//   today's sandbox (copyUp: 'overlay': plain overlayfs copy-up onto tmpfs),
//   copyUp: 'lazy-open' (relation files opened read-only until the first write, which copies the whole segment),
//   copyUp: 'pages' (page-level copy-on-write: written 8 KiB blocks go to a sparse delta beside the data),
//   reflink copy-up (copyUp: 'reflink', the store and the uppers on a loop-mounted XFS with reflink=1; root only).
// Each for (a) a read-only query over pgbench_accounts and (b) a 10-row update (then CHECKPOINT, so the writes reach
// the files); columns: time from "create" to the first query's result (median over the N started together), and
// memory per sandbox (PSS of its processes + writable-layer bytes; for reflink, what the XFS's used space grew by;
// for template clones, the clone's bytes on disk), for N = 10 and 50, how both grow from 10 to 50, and each against
// the template way at the same N. The way copyUp 'auto' picks on this machine (its ext4/tmpfs home) is labelled.
//   node --import tsx bench/postgres-big.ts [--ways template,pages] [--at 10,50]
//   (or BENCH_ROWS=template,overlay,lazy-open,pages,reflink BENCH_COUNTS=10,50 BENCH_SCALE=70)
// A row whose N sandboxes would need more memory than is available (a whole 940 MB segment each) says so instead.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createSandbox, findPostgresBindir, openStore, postgres, type Sandbox, Service } from '../src/index.js';
import { chooseCopyUp } from '../src/presets/postgres/copy-up.js';
import { removeTree } from '../src/process/sweep.js';

/** `--name value` or `--name=value` on the command line (bench/postgres.ts --big passes its own through). */
function flag(name: string): string | undefined {
  const i = process.argv.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const arg = process.argv[i]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : process.argv[i + 1];
}

const WAYS = ['template', 'overlay', 'lazy-open', 'pages', 'reflink'] as const;
type Way = (typeof WAYS)[number];
const SCALE = Number(process.env.BENCH_SCALE ?? 70);
const COUNTS = (flag('at') ?? process.env.BENCH_COUNTS ?? '10,50').split(',').map(Number);
const ROWS = (flag('ways') ?? process.env.BENCH_ROWS ?? WAYS.join(',')).split(',') as Way[];
for (const row of ROWS) if (!WAYS.includes(row)) throw new Error(`unknown way ${row}: one of ${WAYS.join(', ')}`);
// An index range: it reads 1000 rows, but PostgreSQL opens the whole 940 MB table segment read-write all the same.
const READ = 'SELECT sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN 1 AND 1000';
const UPDATE = 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 10';
const WORKLOADS = { read: READ, update: UPDATE } as const;
type Workload = keyof typeof WORKLOADS;
const SEED = { command: `pgbench -i -q -s ${SCALE}` };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function query(url: string | pg.ClientConfig, sql: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** PSS of every process in the sandbox's pid namespace. */
function sandboxPss(sb: Sandbox): number {
  const ns = readlinkSync(`/proc/${sb.pid}/ns/pid`);
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      total += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // ended while we looked
    }
  }
  return total;
}

/** Bytes used on the filesystem that holds the data overlay's writable layer, as the sandbox sees it (its tmpfs). */
async function upperBytes(sb: Sandbox): Promise<number> {
  const { stdout } = await sb.exec('df', ['-B1', '--output=used', '/tmp/sandbox-run-postgres']);
  return Number(stdout.trim().split('\n').at(-1));
}

function usedBytes(dir: string): number {
  execFileSync('sync', ['-f', dir]);
  const st = statfsSync(dir);
  return (st.blocks - st.bfree) * st.bsize;
}

interface Result {
  first: number;
  /** PSS + writable layer, per sandbox. */
  memory: number;
  /** The writable layer's part of it. */
  layer: number;
}

/** MemAvailable: free memory plus what the kernel can reclaim (page cache). */
function availableMemory(): number {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
}

/** A 1 GB segment copied per sandbox: what N of them would take, against what is available. */
function tooBig(count: number, perSandbox: number): string | undefined {
  const need = count * perSandbox;
  const available = availableMemory();
  return need > available * 0.8 ? `n/a: needs ~${(need / 2 ** 30).toFixed(0)} GB (${(available / 2 ** 30).toFixed(0)} GB available)` : undefined;
}

type Preset = ReturnType<typeof postgres>;

/** N sandboxes created together; each runs the workload as its first query; then memory while all are alive. */
async function sandboxes(preset: Preset, count: number, workload: Workload, reflinkHome?: string): Promise<Result> {
  const before = reflinkHome ? usedBytes(reflinkHome) : 0;
  const firsts: number[] = [];
  const started = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const start = performance.now();
      const sb = await createSandbox({ workdir: 'none', presets: [preset] });
      await query(sb.env.DATABASE_URL!, WORKLOADS[workload]);
      firsts.push(performance.now() - start);
      return sb;
    }),
  );
  const live = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (workload === 'update') await Promise.all(live.map((sb) => query(sb.env.DATABASE_URL!, 'CHECKPOINT')));
    const pss = median(live.map(sandboxPss));
    const layer = reflinkHome ? (usedBytes(reflinkHome) - before) / count : median(await Promise.all(live.map(upperBytes)));
    return { first: median(firsts), memory: pss + layer, layer };
  } finally {
    await Promise.all(live.map((sb) => sb.dispose()));
  }
}

/** One shared server on a copy of the cluster (what the template rows use). */
async function sharedServer(cluster: string): Promise<{ dir: string; server: Sandbox; remove: () => Promise<void> }> {
  const dir = mkdtempSync('/var/tmp/sandbox-run-bench-big-');
  execFileSync('cp', ['-a', join(cluster, 'data'), dir]);
  const server = await createSandbox({ workdir: 'none', binds: [{ source: dir }] });
  server.addService(
    await Service.start(server, {
      name: 'postgres',
      command: [join(findPostgresBindir(), 'postgres'), '-D', join(dir, 'data'), '-k', dir, '-c', 'listen_addresses=', '-c', 'max_connections=200'],
      ready: { log: /ready to accept connections/ },
      stopSignal: 'SIGINT',
    }),
  );
  return {
    dir,
    server,
    remove: async () => {
      await server.dispose();
      removeTree(dir);
    },
  };
}

/** N clones made together on the shared server, each then queried once; memory: a clone's bytes on disk. Dropped after. */
async function templates(dir: string, count: number, workload: Workload): Promise<Result> {
  const admin = { host: dir, user: 'postgres', database: 'postgres' };
  const firsts: number[] = [];
  try {
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const start = performance.now();
        await query(admin, `CREATE DATABASE clone${i} TEMPLATE bench STRATEGY FILE_COPY`);
        await query({ ...admin, database: `clone${i}` }, WORKLOADS[workload]);
        firsts.push(performance.now() - start);
      }),
    );
    if (workload === 'update') await query(admin, 'CHECKPOINT');
    const client = new pg.Client(admin);
    await client.connect();
    const { rows } = await client.query<{ size: string }>("SELECT pg_database_size('clone0') AS size");
    await client.end();
    return { first: median(firsts), memory: Number(rows[0]!.size), layer: Number(rows[0]!.size) };
  } finally {
    for (let i = 0; i < count; i++) await query(admin, `DROP DATABASE IF EXISTS clone${i}`);
  }
}

/** A loop-mounted XFS with reflink=1 for the reflink row's SANDBOX_RUN_HOME (root only); undefined with the reason. */
function reflinkHome(): { home: string; remove: () => void } | string {
  if (process.getuid!() !== 0) return 'n/a: needs root to loop-mount an XFS image (or SANDBOX_RUN_HOME on XFS/btrfs)';
  const mkfs = ['/usr/sbin/mkfs.xfs', '/sbin/mkfs.xfs'].find((path) => existsSync(path));
  if (!mkfs) return 'n/a: no mkfs.xfs (apt-get install xfsprogs)';
  const work = mkdtempSync('/var/tmp/sandbox-run-bench-xfs-');
  const image = join(work, 'xfs.img');
  const mnt = join(work, 'mnt');
  execFileSync('truncate', ['-s', '8G', image]);
  execFileSync(mkfs, ['-q', '-m', 'reflink=1', image]);
  mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop', image, mnt]);
  return {
    home: mnt,
    remove: () => {
      execFileSync('umount', [mnt]);
      removeTree(work);
    },
  };
}

const table: { row: Way; workload: Workload; count: number; result: Result | string }[] = [];
const segment = 940 * 2 ** 20;
const ext4Home = process.env.SANDBOX_RUN_HOME;

async function presetRows(row: 'overlay' | 'lazy-open' | 'pages' | 'reflink', home: string | undefined): Promise<void> {
  if (home) process.env.SANDBOX_RUN_HOME = home;
  else if (ext4Home) process.env.SANDBOX_RUN_HOME = ext4Home;
  else delete process.env.SANDBOX_RUN_HOME;
  const preset = postgres({ database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: SEED, copyUp: row });
  await preset.prepare();
  console.log(`${row}: ${preset.copyUp?.reason}`);
  // One sandbox first, not measured: the placement probe and the page cache a first start fills.
  await (await createSandbox({ workdir: 'none', presets: [preset] })).dispose();
  for (const workload of ['read', 'update'] as const)
    for (const count of COUNTS) {
      const copiesSegment = row === 'overlay' || (row === 'lazy-open' && workload === 'update');
      const refusal = copiesSegment ? tooBig(count, segment) : undefined;
      table.push({ row, workload, count, result: refusal ?? (await sandboxes(preset, count, workload, row === 'reflink' ? home : undefined)) });
    }
}

const base = postgres({ database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: SEED, copyUp: 'overlay' });
console.log(`building (or reusing) the pgbench -s ${SCALE} cluster ...`);
await base.prepare();
const clusterBytes = Number(execFileSync('du', ['-sb', base.cluster], { encoding: 'utf8' }).split('\t')[0]);
console.log(`cluster: ${mb(clusterBytes)}`);

for (const row of ROWS) {
  if (row === 'template') {
    const shared = await sharedServer(base.cluster);
    try {
      for (const workload of ['read', 'update'] as const)
        for (const count of COUNTS) {
          const st = statfsSync('/var/tmp');
          const result =
            st.bavail * st.bsize < (count + 3) * clusterBytes
              ? `n/a: needs ~${((count * clusterBytes) / 2 ** 30).toFixed(0)} GB of disk`
              : await templates(shared.dir, count, workload);
          table.push({ row, workload, count, result });
        }
    } finally {
      await shared.remove();
    }
  } else if (row === 'reflink') {
    const xfs = reflinkHome();
    if (typeof xfs === 'string')
      for (const workload of ['read', 'update'] as const) for (const count of COUNTS) table.push({ row, workload, count, result: xfs });
    else
      try {
        await presetRows('reflink', xfs.home);
      } finally {
        process.env.SANDBOX_RUN_HOME = ext4Home ?? '';
        if (!ext4Home) delete process.env.SANDBOX_RUN_HOME;
        xfs.remove();
      }
  } else await presetRows(row, undefined);
}

// What copyUp 'auto' picks here (the home this bench's preset rows run in, not the reflink row's XFS).
const auto = (await chooseCopyUp('auto', (await openStore()).dir)).mechanism;
const NAMES: Record<Way, string> = {
  template: '`CREATE DATABASE .. TEMPLATE` (FILE_COPY)',
  overlay: "sandbox, `copyUp: 'overlay'` (before)",
  'lazy-open': "sandbox, `copyUp: 'lazy-open'`",
  pages: "sandbox, `copyUp: 'pages'`",
  reflink: "sandbox, `copyUp: 'reflink'` (XFS home)",
};
const name = (row: Way) => `${NAMES[row]}${row === auto ? ' (default here)' : row === 'pages' && auto !== 'reflink' ? ' (new default)' : ''}`;
console.log(`\n${mb(clusterBytes)} cluster (pgbench -s ${SCALE}); (a) ${READ}; (b) ${UPDATE} + CHECKPOINT`);
console.log(`copyUp 'auto' here: ${auto}; load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('first: create to first query done, median of the N started together; mem: per sandbox, PSS + writable layer; layer: that layer alone');
const [low, high] = [COUNTS[0]!, COUNTS.at(-1)!];
const counts = low === high ? [low] : [low, high];
const cell = (r: Result | string | undefined, key: keyof Result) =>
  r === undefined ? '' : typeof r === 'string' ? 'n/a' : key === 'first' ? ms(r.first) : mb(r[key]);
const x = (a: Result | string | undefined, b: Result | string | undefined, key: keyof Result) =>
  typeof a === 'object' && typeof b === 'object' && b[key] > 0 ? `${(a[key] / b[key]).toFixed(3)}x` : 'n/a';
const result = (row: Way, workload: Workload, count: number) => table.find((t) => t.row === row && t.workload === workload && t.count === count)?.result;
// A markdown table (README's "Big seeds"): per N, then growth from the first N to the last, then against the template way.
const head = [
  'way',
  'load',
  ...counts.map((n) => `first, ${n}`),
  ...counts.map((n) => `mem, ${n}`),
  ...counts.map((n) => `layer, ${n}`),
  ...(counts.length > 1 ? [`first ${high}/${low}`, `mem ${high}/${low}`] : []),
  ...counts.map((n) => `first vs template, ${n}`),
  ...counts.map((n) => `mem vs template, ${n}`),
];
const lines = [head];
for (const row of ROWS)
  for (const workload of ['read', 'update'] as const) {
    const at = (n: number) => result(row, workload, n);
    lines.push([
      workload === 'read' ? name(row) : '',
      workload === 'read' ? '(a)' : '(b)',
      ...counts.map((n) => cell(at(n), 'first')),
      ...counts.map((n) => cell(at(n), 'memory')),
      ...counts.map((n) => cell(at(n), 'layer')),
      ...(counts.length > 1 ? [x(at(high), at(low), 'first'), x(at(high), at(low), 'memory')] : []),
      ...counts.map((n) => x(at(n), result('template', workload, n), 'first')),
      ...counts.map((n) => x(at(n), result('template', workload, n), 'memory')),
    ]);
  }
const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
const md = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(md(head));
console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
for (const l of lines.slice(1)) console.log(md(l));
for (const t of table) if (typeof t.result === 'string') console.log(`${NAMES[t.row]} ${t.workload} at ${t.count}: ${t.result}`);
console.log('template memory: one clone on disk (the server and its memory are shared by all clones); ratios: n/a where either side is');
