// PostgreSQL, Redis and MariaDB presets from the host's binaries and from
// images (built here from the same host packages, as the tests build them),
// side by side in one run: building the seeded layer, a cold sandbox
// (create + server ready + first query) and a warm-pool acquire (+ first query).
//   node --import tsx bench/server-presets.ts      (BENCH_RUNS=7 BENCH_WARM_RUNS=15)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPool, createSandbox, mariadb, openStore, type Preset, postgres, redis, type Sandbox } from '../src/index.js';
import { mariadbImage, postgresImage, redisImage } from '../test/integration/server-images.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const WARM_RUNS = Number(process.env.BENCH_WARM_RUNS ?? 15);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;

const home = mkdtempSync(join(tmpdir(), 'bench-server-presets-'));
process.env.SANDBOX_RUN_HOME = home;

/** A first query from inside the sandbox, with the server's own client. */
const FIRST: Record<string, string[]> = {
  postgres: ['psql', '-XAtqc', 'SELECT count(*) FROM items'],
  redis: ['redis-cli', 'DBSIZE'],
  mariadb: ['/bin/sh', '-c', 'mariadb -N -u"$MYSQL_USER" -e "SELECT count(*) FROM items" "$MYSQL_DATABASE"'],
};

async function firstQuery(sb: Sandbox, kind: string): Promise<void> {
  const [file, ...args] = FIRST[kind]!;
  const result = await sb.exec(file!, args);
  if (result.exitCode !== 0 || !/^\d+$/.test(result.stdout.trim())) throw new Error(`${kind}: first query failed: ${result.stderr}`);
}

async function measure(kind: string, preset: Preset & { prepare(): Promise<unknown> }): Promise<string[]> {
  const build = performance.now();
  await preset.prepare();
  const built = performance.now() - build;
  const cold: number[] = [];
  const coldQuery: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await using sb = await createSandbox({ workdir: 'none', presets: [preset] });
    cold.push(performance.now() - start);
    await firstQuery(sb, kind);
    coldQuery.push(performance.now() - start);
  }
  await using pool = await createPool({ workdir: 'none', presets: [preset], size: 2 });
  await pool.warm();
  const warm: number[] = [];
  const warmQuery: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    await pool.warm();
    const start = performance.now();
    await using sb = await pool.acquire();
    warm.push(performance.now() - start);
    await firstQuery(sb, kind);
    warmQuery.push(performance.now() - start);
  }
  return [ms(built), ms(median(cold)), ms(median(coldQuery)), ms(median(warm)), ms(median(warmQuery))];
}

try {
  const store = await openStore();
  const images = { postgres: await postgresImage(store, home), redis: await redisImage(store, home), mariadb: await mariadbImage(store, home) };
  const sql = join(home, 'seed.sql');
  (await import('node:fs')).writeFileSync(
    sql,
    'CREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 1000) g;\n',
  );
  const mysql = join(home, 'seed-mysql.sql');
  (await import('node:fs')).writeFileSync(
    mysql,
    'CREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items SELECT seq, md5(seq) FROM seq_1_to_1000;\n',
  );
  const commands = Array.from({ length: 1000 }, (_, i) => `SET item:${i} value-${i}`);
  const rows: [string, string, Preset & { prepare(): Promise<unknown> }][] = [
    ['postgres', 'host', postgres({ seed: { sql: [sql] } })],
    ['postgres', `image ${images.postgres}`, postgres({ image: images.postgres, seed: { sql: [sql] } })],
    ['redis', 'host', redis({ seed: { commands } })],
    ['redis', `image ${images.redis}`, redis({ image: images.redis, seed: { commands } })],
    ['mariadb', 'host', mariadb({ seed: { sql: [mysql] } })],
    ['mariadb', `image ${images.mariadb}`, mariadb({ image: images.mariadb, seed: { sql: [mysql] } })],
  ];
  const header = ['preset', 'server from', 'build (first run)', 'cold: ready', 'cold: + first query', 'warm: acquire', 'warm: + first query'];
  const lines = [header, header.map(() => '---')];
  const results = new Map<string, string[]>();
  for (const [kind, from, preset] of rows) {
    const figures = await measure(kind, preset);
    results.set(`${kind} ${from}`, figures);
    lines.push([kind, from, ...figures]);
  }
  console.log(`medians of ${RUNS} cold and ${WARM_RUNS} warm runs (2 vCPU); first query from inside with the server's own client\n`);
  for (const line of lines) console.log(`| ${line.join(' | ')} |`);
  // Image over host, per column: the ratio the README quotes.
  const num = (s: string) => Number.parseFloat(s);
  for (const kind of ['postgres', 'redis', 'mariadb']) {
    const host = results.get(`${kind} host`)!;
    const image = [...results.entries()].find(([key]) => key.startsWith(`${kind} image`))![1];
    console.log(`${kind}: image/host ${image.map((v, i) => `${(num(v) / num(host[i]!)).toFixed(2)}x`).join(' ')}`);
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}
