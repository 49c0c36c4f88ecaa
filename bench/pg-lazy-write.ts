// What a sandbox's PostgreSQL costs on a pgbench -s 10 seed with copyUp 'overlay' (a plain overlay: every relation
// file opened read-write is copied up whole) and 'lazy-open' (pg-lazy-write.so: read-only until the first write),
// side by side in one run, for (a) a read-only query over pgbench_accounts and (b) a 10-row update:
// time from createSandbox to the query's answer, and bytes in the sandbox's writable layer (tmpfs) after the query
// and after a CHECKPOINT (which writes the updated pages: the copy-up happens at that first write).
//   node --import tsx bench/pg-lazy-write.ts      (BENCH_SCALE=10 BENCH_RUNS=5)
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type CopyUp, createSandbox, postgres, type Sandbox } from '../src/index.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const WORKLOADS = {
  read: 'SELECT count(*), sum(abalance) FROM pgbench_accounts',
  update: 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 10',
} as const;
const MODES = ['overlay', 'lazy-open', 'pages'] as const satisfies readonly CopyUp[];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;
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

/** Bytes used on the tmpfs that holds the sandbox's writable layers. */
async function upperBytes(sb: Sandbox): Promise<number> {
  const { stdout } = await sb.exec('df', ['-B1', '--output=used', '/tmp/sandbox-run-postgres']);
  return Number(stdout.trim().split('\n').at(-1));
}

interface Sample {
  firstQuery: number;
  upper: number;
  checkpoint: number;
  upperAfterCheckpoint: number;
}

const options = { database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: { command: `pgbench -i -q -s ${SCALE}` } };
const presets = Object.fromEntries(MODES.map((copyUp) => [copyUp, postgres({ ...options, copyUp })])) as Record<
  (typeof MODES)[number],
  ReturnType<typeof postgres>
>;
console.log(`building (or reusing) the pgbench -s ${SCALE} cluster ...`);
await Promise.all(Object.values(presets).map((preset) => preset.prepare()));
const clusterBytes = Number(execFileSync('du', ['-sb', presets.overlay.cluster], { encoding: 'utf8' }).split('\t')[0]);
console.log(`cluster: ${mb(clusterBytes)}; lazy-open uses ${presets['lazy-open'].copyUp?.reason}\n`);

const results: Record<string, Sample[]> = {};
// Interleaved, so that a slower phase of the machine does not favour one mode.
for (let run = 0; run < RUNS; run++)
  for (const workload of Object.keys(WORKLOADS) as (keyof typeof WORKLOADS)[])
    for (const mode of MODES) {
      const start = performance.now();
      const sb = await createSandbox({ workdir: 'none', presets: [presets[mode]] });
      try {
        await query(sb.env.DATABASE_URL!, WORKLOADS[workload]);
        const firstQuery = performance.now() - start;
        const upper = await upperBytes(sb);
        const checkpointStart = performance.now();
        await query(sb.env.DATABASE_URL!, 'CHECKPOINT');
        const checkpoint = performance.now() - checkpointStart;
        const samples = results[`${workload} ${mode}`] ?? [];
        samples.push({ firstQuery, upper, checkpoint, upperAfterCheckpoint: await upperBytes(sb) });
        results[`${workload} ${mode}`] = samples;
      } finally {
        await sb.dispose();
      }
    }

const pick = (key: string, field: keyof Sample) => median(results[key]!.map((sample) => sample[field]));
console.log(`pgbench -s ${SCALE} (${mb(clusterBytes)}), median of ${RUNS} cold sandboxes per row`);
console.log(`  read:   ${WORKLOADS.read}\n  update: ${WORKLOADS.update}`);
const head = ['workload', 'copyUp', 'create..answer', 'layer after', 'CHECKPOINT', 'layer after CHECKPOINT', 'vs overlay (time, layer)'];
const widths = [10, 11, 16, 13, 12, 24, 26];
const line = (cells: string[]) => console.log(cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(''));
line(head);
for (const workload of Object.keys(WORKLOADS))
  for (const mode of MODES) {
    const key = `${workload} ${mode}`;
    const base = `${workload} overlay`;
    const ratio = `${(pick(key, 'firstQuery') / pick(base, 'firstQuery')).toFixed(2)}x, ${(pick(key, 'upperAfterCheckpoint') / pick(base, 'upperAfterCheckpoint')).toFixed(3)}x`;
    line([workload, mode, ms(pick(key, 'firstQuery')), mb(pick(key, 'upper')), ms(pick(key, 'checkpoint')), mb(pick(key, 'upperAfterCheckpoint')), ratio]);
  }
