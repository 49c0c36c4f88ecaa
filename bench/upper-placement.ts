// Where the writable layer lives: tmpfs (Linux 6.6+) vs a private directory on
// disk (Linux 5.11-6.5, forced here with SANDBOX_RUN_OVERLAY), side by side in
// one run, samples interleaved so that drift hits both alike:
//   - the probe that chooses (once per process, then remembered for the boot);
//   - sandbox start to exit of /bin/true with a copy-on-write working directory;
//   - a cold PostgreSQL sandbox: create + ready + first query (which copies
//     pgbench_accounts up: to memory on tmpfs, to the disk otherwise).
//   node --import tsx bench/upper-placement.ts   (BENCH_RUNS=200 BENCH_PG_RUNS=7 BENCH_SCALE=10)
import { mkdtempSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { helperPath } from '../src/helper/locate.js';
import { processScopedDir } from '../src/home.js';
import { createSandbox, postgres, run } from '../src/index.js';
import { probeOverlay } from '../src/sandbox/overlay-probe.js';
import { upperPlacement } from '../src/sandbox/upper-placement.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const PG_RUNS = Number(process.env.BENCH_PG_RUNS ?? 7);
const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const MODES = ['tmpfs', 'disk'] as const;
type Mode = (typeof MODES)[number];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;

/** Runs `body` for each mode in turn, `runs` times, and returns the samples per mode. */
async function interleaved(runs: number, body: () => Promise<number | void>): Promise<Record<Mode, number[]>> {
  const samples: Record<Mode, number[]> = { tmpfs: [], disk: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of MODES) {
      process.env.SANDBOX_RUN_OVERLAY = mode;
      const start = performance.now();
      const end = await body();
      samples[mode].push((end ?? performance.now()) - start);
    }
  }
  delete process.env.SANDBOX_RUN_OVERLAY;
  return samples;
}

function row(name: string, samples: Record<Mode, number[]>): void {
  const [t, d] = [median(samples.tmpfs), median(samples.disk)];
  console.log(
    `${name.padEnd(46)}${ms(t).padStart(10)}${ms(d).padStart(10)}${`${(d / t).toFixed(2)}x`.padStart(8)}` +
      `   p90 ${ms(p90(samples.tmpfs))} / ${ms(p90(samples.disk))}`,
  );
}

console.log(`Linux ${release()}; this machine's own mode: ${upperPlacement().mode}`);
const helper = helperPath();
const probes: Record<Mode, number[]> = { tmpfs: [], disk: [] };
for (let i = 0; i < 30; i++) {
  for (const mode of MODES) {
    const scratch = mode === 'disk' ? processScopedDir('uppers') : mkdtempSync(join(tmpdir(), 'sandbox-run-probe-'));
    const start = performance.now();
    const result = probeOverlay(helper, scratch, mode === 'disk');
    probes[mode].push(performance.now() - start);
    if (!result.ok) throw new Error(`${mode} probe: ${result.detail}`);
  }
}

const project = mkdtempSync(join(tmpdir(), 'sandbox-run-bench-'));
for (const mode of MODES) {
  process.env.SANDBOX_RUN_OVERLAY = mode;
  upperPlacement(); // probed before timing: the rows below are per sandbox
}
const start = await interleaved(RUNS, async () => {
  const result = await run('/bin/true', [], { cwd: project, stdio: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}`);
});

const preset = postgres({ database: 'bench', layer: `bench-pgbench-s${SCALE}`, seed: { command: `pgbench -i -q -s ${SCALE}` } });
await preset.prepare();
const ready: Record<Mode, number[]> = { tmpfs: [], disk: [] };
const first = await interleaved(PG_RUNS, async () => {
  const begin = performance.now();
  const sb = await createSandbox({ workdir: 'none', presets: [preset] });
  ready[process.env.SANDBOX_RUN_OVERLAY as Mode].push(performance.now() - begin);
  const client = new pg.Client(sb.env.DATABASE_URL!);
  await client.connect();
  await client.query('SELECT abalance FROM pgbench_accounts WHERE aid = 1');
  const end = performance.now();
  await client.end();
  await sb.dispose();
  return end;
});

console.log(`\n${'median of interleaved samples'.padEnd(46)}${'tmpfs'.padStart(10)}${'disk'.padStart(10)}${'disk/t'.padStart(8)}`);
row('probe (once per process; cached for the boot)', probes);
row(`sandbox start to exit, cow workdir (n=${RUNS})`, start);
row(`PG s${SCALE}: create + ready (n=${PG_RUNS})`, ready);
row(`PG s${SCALE}: create + ready + first query`, first);
