// What copyUp 'pages' costs on reads: repeated full scans of pgbench_accounts (pgbench -s 10, 128 MB, larger than
// shared_buffers, so every scan reads each 8 KiB block from the OS through the library), 'lazy-open' beside it
// (the same scans, one lookup per read) and after a 10-row update (the table then has a delta and map: every read
// merges), in one run.
//   node --import tsx bench/pg-page-cow-reads.ts      (BENCH_SCALE=10 BENCH_SCANS=10)
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type CopyUp, createSandbox, postgres } from '../src/index.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const SCANS = Number(process.env.BENCH_SCANS ?? 10);
const MODES = ['lazy-open', 'pages'] as const satisfies readonly CopyUp[];
const options = { database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: { command: `pgbench -i -q -s ${SCALE}` } };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: [string, number][] = [];
for (const copyUp of MODES) {
  const preset = postgres({ ...options, copyUp });
  await preset.prepare();
  await using sb = await createSandbox({ workdir: 'none', presets: [preset] });
  const client = new pg.Client(sb.env.DATABASE_URL!);
  await client.connect();
  try {
    for (const phase of ['before any write', 'after a 10-row update']) {
      if (phase !== 'before any write') await client.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 10; CHECKPOINT');
      const times: number[] = [];
      for (let scan = 0; scan < SCANS; scan++) {
        const start = performance.now();
        await client.query('SELECT count(*), sum(abalance) FROM pgbench_accounts');
        times.push(performance.now() - start);
      }
      rows.push([`${copyUp}, ${phase}`, median(times)]);
    }
  } finally {
    await client.end();
  }
}
const base = rows[0]![1];
console.log(`full scan of pgbench_accounts (pgbench -s ${SCALE}), median of ${SCANS} scans in one sandbox per mode`);
for (const [name, time] of rows) console.log(`${name.padEnd(36)}${`${time.toFixed(1)} ms`.padStart(10)}  ${(time / base).toFixed(2)}x`);
