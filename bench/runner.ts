// The PostgreSQL example suite (examples/postgres-node, 40 files), side by
// side in one run:
//   conventional: one shared server, CREATE DATABASE .. TEMPLATE per file,
//                 files one after another (what suites do without isolation);
//   sandbox-run:  --each file --parallel N, a sandbox + PostgreSQL per file.
// BENCH_FILLER_MB (default 100) adds an untouched table to the seed, so the
// clone cost is that of a realistic database, not of a toy one.
//   node --import tsx bench/runner.ts
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import pg from 'pg';
import { createSandbox, postgres } from '../src/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const EXAMPLE = join(ROOT, 'examples/postgres-node');
const FILLER_MB = Number(process.env.BENCH_FILLER_MB ?? 100);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? availableParallelism() * 2);
const files = Array.from({ length: 40 }, (_, i) => `tests/transfer-${String(i + 1).padStart(2, '0')}.test.mjs`);
const scratch = (await import('node:fs')).mkdtempSync('/tmp/sandbox-run-bench-');
process.env.SANDBOX_RUN_HOME ??= join(scratch, 'home');

const filler = join(scratch, 'filler.sql');
writeFileSync(filler, `CREATE TABLE filler AS SELECT n, repeat(md5(n::text), 30) AS pad FROM generate_series(1, ${FILLER_MB * 1000}) AS n;\n`);
const seed = [join(EXAMPLE, 'db/schema.sql'), join(EXAMPLE, 'db/seed.sql'), filler];
const preset = postgres({ seed: { sql: seed } });
let t = performance.now();
await preset.prepare();
console.log(`seeded cluster (+${FILLER_MB} MB filler) built in ${((performance.now() - t) / 1000).toFixed(1)} s (cached afterwards)`);

// Conventional: one server, a template clone per file, sequential.
let conventional: number;
{
  await using server = await createSandbox({ workdir: 'none', presets: [preset] });
  const admin = new pg.Client({ connectionString: server.env.DATABASE_URL!.replace('/app?', '/postgres?') });
  await admin.connect();
  t = performance.now();
  for (const [i, file] of files.entries()) {
    await admin.query(`CREATE DATABASE t${i} TEMPLATE app STRATEGY FILE_COPY`);
    const url = server.env.DATABASE_URL!.replace('/app?', `/t${i}?`);
    const result = await execa('node', ['--test', file], { cwd: EXAMPLE, reject: false, env: { DATABASE_URL: url } });
    if (result.exitCode !== 0) throw new Error(`conventional: ${file} failed\n${result.stdout}`);
    await admin.query(`DROP DATABASE t${i}`);
  }
  conventional = performance.now() - t;
  await admin.end();
}

// sandbox-run: a sandbox with its own PostgreSQL per file, PARALLEL at a time.
const config = join(scratch, 'sandbox.config.ts');
writeFileSync(
  config,
  `import { defineConfig, postgres } from 'sandbox-run';\nexport default defineConfig({ presets: [postgres({ seed: { sql: ${JSON.stringify(seed)} } })] });\n`,
);
t = performance.now();
const run = await execa(
  'node',
  [
    join(ROOT, 'dist/cli/main.js'),
    '--config',
    config,
    '--each',
    'tests/*.test.mjs',
    '--parallel',
    String(PARALLEL),
    '--output',
    'quiet',
    '--',
    'node',
    '--test',
    '{}',
  ],
  {
    cwd: EXAMPLE,
    reject: false,
    env: { CI: '1' },
  },
);
const sandboxed = performance.now() - t;
if (run.exitCode !== 0) throw new Error(`sandbox-run failed:\n${run.stdout}\n${run.stderr}`);

console.log(`\n40 files, ${availableParallelism()} cores\n`);
console.log(`${'conventional (shared server, TEMPLATE clone per file, sequential)'.padEnd(70)}${(conventional / 1000).toFixed(1)} s`);
console.log(`${`sandbox-run --each --parallel ${PARALLEL}`.padEnd(70)}${(sandboxed / 1000).toFixed(1)} s`);
console.log(`\nspeed-up: ${(conventional / sandboxed).toFixed(2)}x (target >= 3x)`);
(await import('node:fs')).rmSync(scratch, { recursive: true, force: true });
