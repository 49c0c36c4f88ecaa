// CPU per sandbox start with the PostgreSQL preset, 1, 10 and 50 at once,
// the previous behaviour (SANDBOX_RUN_START_CPU=before) and the current one
// side by side in one run, with sandboxes without PostgreSQL as the floor.
//   node --import tsx bench/start-cpu.ts           (BENCH_COUNTS=1,10,50 BENCH_ROUNDS=3)
// Each measurement is a child process: N sandboxes created together, each
// runs `psql -c 'SELECT 1'` inside, then all are disposed. Its CPU is the
// child's own plus that of every process it (transitively) reaped: the
// helpers, the sandboxes' init, PostgreSQL and its backends, psql
// (utime+stime+cutime+cstime of /proc/self/stat, measured after the preset
// is prepared). Host-side work (the pool, readiness polling) is also shown
// apart: the child's own CPU.
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

function measure(count: number, withPostgres: boolean, variant: 'before' | 'after'): Sample {
  const out = execFileSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, 'child', String(count), withPostgres ? 'pg' : 'plain'], {
    encoding: 'utf8',
    env: { ...process.env, SANDBOX_RUN_START_CPU: variant },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Sample;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function parent(): Promise<void> {
  const counts = (process.env.BENCH_COUNTS ?? '1,10,50').split(',').map(Number);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  // Build (or reuse) the layer before anything is measured.
  await postgres({ database: 'bench', layer: 'bench-start-cpu' }).prepare();
  console.log(`CPU per sandbox start (create + psql -c 'SELECT 1' inside + dispose), median of ${rounds} rounds, ${TICK_MS} ms ticks`);
  console.log(
    `${'at once'.padEnd(8)}${'no PostgreSQL'.padStart(15)}${'before: total'.padStart(15)}${'host'.padStart(8)}${'wall'.padStart(9)}` +
      `${'after: total'.padStart(15)}${'host'.padStart(8)}${'wall'.padStart(9)}${'after/before'.padStart(14)}`,
  );
  for (const count of counts) {
    const rows: Record<string, Sample[]> = { plain: [], before: [], after: [] };
    // Interleaved, so that a slow moment of the machine hits every variant alike.
    for (let round = 0; round < rounds; round++) {
      rows.plain!.push(measure(count, false, 'after'));
      rows.before!.push(measure(count, true, 'before'));
      rows.after!.push(measure(count, true, 'after'));
    }
    const per = (samples: Sample[], key: keyof Sample) => median(samples.map((s) => s[key])) / (key === 'wall' ? 1 : count);
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    console.log(
      `${String(count).padEnd(8)}${ms(per(rows.plain!, 'total')).padStart(15)}` +
        `${ms(per(rows.before!, 'total')).padStart(15)}${ms(per(rows.before!, 'self')).padStart(8)}${ms(per(rows.before!, 'wall')).padStart(9)}` +
        `${ms(per(rows.after!, 'total')).padStart(15)}${ms(per(rows.after!, 'self')).padStart(8)}${ms(per(rows.after!, 'wall')).padStart(9)}` +
        `${`${(per(rows.after!, 'total') / per(rows.before!, 'total')).toFixed(2)}x`.padStart(14)}`,
    );
  }
  console.log('total: CPU of every process per sandbox; host: the runner process alone (pool, probes, readiness polling); wall: the whole batch');
}

if (process.argv[2] === 'child') await child(Number(process.argv[3]), process.argv[4] === 'pg');
else await parent();
