// What TLS and roles cost the PostgreSQL preset, side by side with the plain preset:
//   build: the seeded layer built from scratch (force), plain vs ssl: true + SCRAM + 2 roles;
//   start: a cold sandbox until the server is ready, and until a first query answers
//          (inside, over TCP: TLS with verify-full vs plain TCP), interleaved.
//   node --import tsx bench/postgres-tls.ts      (BENCH_SCALE=1 BENCH_BUILDS=3 BENCH_RUNS=15)
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createSandbox, openStore, type Preset, postgres } from '../src/index.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const BUILDS = Number(process.env.BENCH_BUILDS ?? 3);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const QUERY = fileURLToPath(new URL('../test/fixtures/pg/query.mjs', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;

const seed = { command: `pgbench -i -q -s ${SCALE}` };
const store = await openStore();
const variants: Record<'plain' | 'tls', Preset> = {
  plain: postgres({ seed, store, layer: 'bench-tls/plain', connect: 'tcp' }),
  tls: postgres({
    seed,
    store,
    layer: 'bench-tls/tls',
    ssl: true,
    auth: 'scram-sha-256',
    password: 'bench',
    roles: [
      { name: 'app', password: 'app-pw', createdb: true },
      { name: 'readonly', password: 'ro-pw' },
    ],
  }),
};

const build: Record<string, number[]> = { plain: [], tls: [] };
for (let i = 0; i < BUILDS; i++)
  for (const [name, preset] of Object.entries(variants)) {
    const start = performance.now();
    await preset.prepare({ force: true });
    build[name]!.push(performance.now() - start);
  }

const ready: Record<string, number[]> = { plain: [], tls: [] };
const first: Record<string, number[]> = { plain: [], tls: [] };
for (let i = 0; i < RUNS; i++)
  for (const [name, preset] of Object.entries(variants)) {
    const start = performance.now();
    await using sb = await createSandbox({ workdir: 'none', presets: [preset] });
    ready[name]!.push(performance.now() - start);
    // The client runs inside (TCP is the sandbox's own loopback); its node start is in both columns alike.
    const result = await sb.exec(process.execPath, [QUERY, sb.env.DATABASE_URL!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1']);
    if (!result.stdout.includes('"rows"')) throw new Error(`${name}: ${result.stdout}${result.stderr}`);
    first[name]!.push(performance.now() - start);
  }

console.log(`PostgreSQL preset, pgbench -s ${SCALE} seed; build: median of ${BUILDS}, start: median of ${RUNS} (interleaved)`);
console.log(`${'what'.padEnd(58)}${'plain'.padStart(10)}${'TLS+SCRAM+roles'.padStart(18)}${'extra'.padStart(10)}`);
const row = (what: string, xs: Record<string, number[]>) => {
  const [a, b] = [median(xs.plain!), median(xs.tls!)];
  console.log(`${what.padEnd(58)}${ms(a).padStart(10)}${ms(b).padStart(18)}${ms(b - a).padStart(10)}`);
};
row('build the seeded layer (initdb + seed, forced)', build);
row('cold sandbox: create + PostgreSQL ready', ready);
row('cold sandbox: ready + node client connects + 1 query (TCP)', first);
