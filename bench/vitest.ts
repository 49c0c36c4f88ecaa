// Vitest: the per-file cost of sandboxPool over the plain forks pool.
//   node --import tsx bench/vitest.ts      (BENCH_FILES, BENCH_ROUNDS, BENCH_WORKERS to vary)
// A generated suite of trivial test files runs through the Vitest CLI with
// each pool, alternating, several rounds; wall time per run includes Vite's
// start, which is the same for both, so the difference over the file count is
// the per-file overhead of a sandbox (helper, namespaces, overlay, write-back).
// BENCH_TRIVIAL=0 or BENCH_PG=0 skip one of the two parts.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';

const ROOT = new URL('..', import.meta.url).pathname;
const FILES = Number(process.env.BENCH_FILES ?? 40);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WORKERS = process.env.BENCH_WORKERS;
const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');

/** A throwaway project inside the repository, so that `vitest` resolves from its node_modules. */
function makeSuite(): string {
  const dir = join(ROOT, 'bench', `.vitest-suite-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'vitest.config.ts'),
    `import { defineConfig } from 'vitest/config';
import { sandboxPool } from '../../dist/vitest/index.js';
export default defineConfig({ test: { include: ['*.test.ts'], pool: process.env.BENCH_POOL === 'sandbox' ? sandboxPool() : 'forks' } });
`,
  );
  for (let i = 0; i < FILES; i++)
    writeFileSync(join(dir, `t${i}.test.ts`), `import { expect, it } from 'vitest';\nit('adds', () => expect(${i} + 1).toBe(${i + 1}));\n`);
  return dir;
}

async function runOnce(dir: string, pool: string): Promise<number> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
  const start = performance.now();
  const result = await execa(process.execPath, [VITEST, 'run', '--root', dir, ...(WORKERS ? ['--maxWorkers', WORKERS] : [])], {
    cwd: dir,
    env: { ...env, BENCH_POOL: pool, CI: '1' },
    extendEnv: false,
    reject: false,
    all: true,
  });
  const elapsed = performance.now() - start;
  if (result.exitCode !== 0) throw new Error(`${pool}: exit ${result.exitCode}\n${result.all}`);
  return elapsed;
}

// The suites load the plugin from dist/, as users do: build it first.
await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const dir = process.env.BENCH_TRIVIAL === '0' ? undefined : makeSuite();
if (dir)
  try {
    const times: Record<string, number[]> = { forks: [], sandbox: [] };
    await runOnce(dir, 'forks'); // warm Vite's and the OS's caches
    await runOnce(dir, 'sandbox');
    for (let round = 0; round < ROUNDS; round++) for (const pool of ['forks', 'sandbox']) times[pool]!.push(await runOnce(dir, pool));
    const forks = median(times.forks!);
    const sandbox = median(times.sandbox!);
    const perFile = (sandbox - forks) / FILES;
    console.log(`Vitest ${FILES} trivial files, ${ROUNDS} rounds, maxWorkers ${WORKERS ?? 'default'} (median wall time of the CLI run)`);
    console.log(`  forks        ${forks.toFixed(0).padStart(6)} ms   ${(forks / FILES).toFixed(1)} ms/file`);
    console.log(`  sandboxPool  ${sandbox.toFixed(0).padStart(6)} ms   ${(sandbox / FILES).toFixed(1)} ms/file   x${(sandbox / forks).toFixed(2)}`);
    console.log(`  overhead     ${perFile >= 0 ? '+' : ''}${perFile.toFixed(1)} ms per file (target <= +15 ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

// The PostgreSQL example: forks + one shared server + CREATE DATABASE ..
// TEMPLATE per file, versus sandboxPool (a PostgreSQL per file on a
// copy-on-write view of the seeded cluster). BENCH_PG=0 skips it.
if (process.env.BENCH_PG !== '0') {
  const example = join(ROOT, 'examples/vitest-postgres');
  const fillerMb = process.env.PG_SEED_FILLER_MB ?? '300';
  const runExample = async (mode: string): Promise<number> => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
    const start = performance.now();
    const result = await execa(process.execPath, [VITEST, 'run', '--root', example, ...(WORKERS ? ['--maxWorkers', WORKERS] : [])], {
      cwd: example,
      env: { ...env, PG_MODE: mode, PG_SEED_FILLER_MB: fillerMb, CI: '1' },
      extendEnv: false,
      reject: false,
      all: true,
    });
    const elapsed = performance.now() - start;
    // 'shared' is red by design (the files trample each other): it is the floor, not a contender.
    if (result.exitCode !== 0 && mode !== 'shared') throw new Error(`PostgreSQL example, ${mode}: exit ${result.exitCode}\n${result.all}`);
    return elapsed;
  };
  await runExample('sandbox'); // builds the seeded cluster once (not timed)
  const pgRounds = Number(process.env.BENCH_PG_ROUNDS ?? 3);
  const times: Record<string, number[]> = { shared: [], template: [], sandbox: [] };
  for (let round = 0; round < pgRounds; round++) for (const mode of ['shared', 'template', 'sandbox']) times[mode]!.push(await runExample(mode));
  const floor = median(times.shared!);
  const template = median(times.template!);
  const sandbox = median(times.sandbox!);
  const isolation = (total: number) => ((total - floor) / 40).toFixed(0).padStart(4);
  console.log(`PostgreSQL example, 40 files, seed + ${fillerMb} MB filler, ${pgRounds} rounds (median wall time)`);
  console.log(`  forks, one shared database (red; floor) ${floor.toFixed(0).padStart(6)} ms   ${(floor / 40).toFixed(0)} ms/file`);
  console.log(
    `  forks + CREATE DATABASE .. TEMPLATE     ${template.toFixed(0).padStart(6)} ms   ${(template / 40).toFixed(0)} ms/file` +
      `   isolation ${isolation(template)} ms/file`,
  );
  console.log(
    `  sandboxPool + PostgreSQL per file       ${sandbox.toFixed(0).padStart(6)} ms   ${(sandbox / 40).toFixed(0)} ms/file` +
      `   isolation ${isolation(sandbox)} ms/file`,
  );
  const cost = (sandbox - floor) / 40;
  console.log(
    `  sandboxPool vs template: ${(template / sandbox).toFixed(2)}x faster overall; ` +
      `isolation per file ${cost < 5 ? 'within noise of the floor' : `${((template - floor) / (sandbox - floor)).toFixed(1)}x cheaper`}`,
  );
}
