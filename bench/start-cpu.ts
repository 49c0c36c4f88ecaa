// CPU per sandbox start with the PostgreSQL preset, 1, 10 and 50 at once, in one run:
// 1. the library: N sandboxes created together (createSandbox with the preset), each runs
//    `psql -c 'SELECT 1'` inside, then all are disposed; sandboxes without PostgreSQL as the floor;
// 2. the runner: `sandbox-run --parallel N --replicate -- sh -c "psql -c 'SELECT 1'"` in
//    examples/postgres-node (its config has the preset), before (SANDBOX_RUN_POOL_REFILL=always: the
//    pool starts a replacement after every acquire, as it did) and after (no more sandboxes than jobs).
//   node --import tsx bench/start-cpu.ts           (BENCH_COUNTS=1,10,50 BENCH_ROUNDS=3)
// Library CPU is a child process's own plus that of every process it (transitively) reaped: the
// helpers, the sandboxes' init, PostgreSQL and its backends, psql (utime+stime+cutime+cstime of
// /proc/self/stat, measured after the preset is prepared); host: the child's own CPU alone (the
// pool, probes, readiness polling). Runner CPU is what bash's `times` reports for the CLI's whole
// process tree, the CLI's start included.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createSandbox, postgres } from '../src/index.js';

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU ms of this process: its own (self) and with every reaped descendant (total). */
function cpu(): { self: number; total: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const [utime, stime, cutime, cstime] = stat
    .slice(stat.lastIndexOf(') ') + 2)
    .split(' ')
    .slice(11, 15)
    .map(Number) as [number, number, number, number];
  return { self: (utime + stime) * TICK_MS, total: (utime + stime + cutime + cstime) * TICK_MS };
}

interface Sample {
  self: number;
  total: number;
  wall: number;
}

async function child(count: number, withPostgres: boolean): Promise<void> {
  const preset = postgres({ database: 'bench', layer: 'bench-start-cpu' });
  if (withPostgres) await preset.prepare();
  // One sandbox first, not measured: the probes and caches a first start fills.
  await (await createSandbox({ workdir: 'none', ...(withPostgres ? { presets: [preset] } : {}) })).dispose();
  const before = cpu();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: count }, async () => {
      const sb = await createSandbox({ workdir: 'none', ...(withPostgres ? { presets: [preset] } : {}) });
      const result = withPostgres ? await sb.exec('psql', ['-X', '-At', '-c', 'SELECT 1']) : await sb.exec('true', []);
      if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
      await sb.dispose();
    }),
  );
  const wall = performance.now() - start;
  const after = cpu();
  const sample: Sample = { self: after.self - before.self, total: after.total - before.total, wall };
  console.log(JSON.stringify(sample));
}

function measure(count: number, withPostgres: boolean): Sample {
  const out = execFileSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, 'child', String(count), withPostgres ? 'pg' : 'plain'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Sample;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ROOT = new URL('..', import.meta.url).pathname;

/** CPU ms of a whole `sandbox-run --parallel N --replicate` run (bash's `times` for its children). */
function runnerCpu(count: number, withPostgres: boolean, refill: 'always' | 'jobs'): number {
  const command = withPostgres ? "psql -X -At -c 'SELECT 1' >/dev/null" : 'true';
  const out = execFileSync(
    'bash',
    ['-c', '"$@" >/dev/null 2>&1 </dev/null || echo failed; times', 'bash', process.execPath, `${ROOT}dist/cli/main.js`, '--parallel', String(count)]
      .concat(count > 1 ? ['--replicate'] : [])
      .concat(['--output', 'quiet', '--', 'sh', '-c', command]),
    {
      encoding: 'utf8',
      cwd: withPostgres ? `${ROOT}examples/postgres-node` : ROOT,
      env: { ...process.env, ...(refill === 'always' ? { SANDBOX_RUN_POOL_REFILL: 'always' } : {}) },
    },
  );
  if (out.includes('failed')) throw new Error(`sandbox-run --parallel ${count} failed`);
  const [user, system] = [
    ...out
      .trim()
      .split('\n')
      .at(-1)!
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
  return user! + system!;
}

async function parent(): Promise<void> {
  const counts = (process.env.BENCH_COUNTS ?? '1,10,50').split(',').map(Number);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  // Build (or reuse) the layer before anything is measured.
  await postgres({ database: 'bench', layer: 'bench-start-cpu' }).prepare();
  console.log(`CPU per sandbox start (create + psql -c 'SELECT 1' inside + dispose), median of ${rounds} rounds, ${TICK_MS} ms ticks`);
  console.log(`${'at once'.padEnd(8)}${'no PostgreSQL'.padStart(15)}${'PostgreSQL: total'.padStart(19)}${'host'.padStart(8)}${'wall'.padStart(9)}`);
  for (const count of counts) {
    const rows = { plain: [] as Sample[], pg: [] as Sample[] };
    // Interleaved, so that a slow moment of the machine hits both alike.
    for (let round = 0; round < rounds; round++) {
      rows.plain.push(measure(count, false));
      rows.pg.push(measure(count, true));
    }
    const per = (samples: Sample[], key: keyof Sample) => median(samples.map((s) => s[key])) / (key === 'wall' ? 1 : count);
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    console.log(
      `${String(count).padEnd(8)}${ms(per(rows.plain, 'total')).padStart(15)}` +
        `${ms(per(rows.pg, 'total')).padStart(19)}${ms(per(rows.pg, 'self')).padStart(8)}${ms(per(rows.pg, 'wall')).padStart(9)}`,
    );
  }
  console.log('total: CPU of every process per sandbox; host: the runner process alone (pool, probes, readiness polling); wall: the whole batch');

  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  console.log(`\nsandbox-run --parallel N --replicate -- sh -c "psql -c 'SELECT 1'" (examples/postgres-node), CPU per item, whole run / N`);
  console.log(`${'N'.padEnd(8)}${'no PostgreSQL'.padStart(15)}${'before (refill)'.padStart(17)}${'after'.padStart(10)}${'after/before'.padStart(14)}`);
  for (const count of counts) {
    const rows = { plain: [] as number[], before: [] as number[], after: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      rows.plain.push(runnerCpu(count, false, 'jobs'));
      rows.before.push(runnerCpu(count, true, 'always'));
      rows.after.push(runnerCpu(count, true, 'jobs'));
    }
    const per = (xs: number[]) => median(xs) / count;
    console.log(
      `${String(count).padEnd(8)}${`${per(rows.plain).toFixed(0)} ms`.padStart(15)}${`${per(rows.before).toFixed(0)} ms`.padStart(17)}` +
        `${`${per(rows.after).toFixed(0)} ms`.padStart(10)}${`${(per(rows.after) / per(rows.before)).toFixed(2)}x`.padStart(14)}`,
    );
  }
}

if (process.argv[2] === 'child') await child(Number(process.argv[3]), process.argv[4] === 'pg');
else await parent();
