// Image roots against the host root, side by side in one run:
//   node --import tsx bench/image-root.ts      (BENCH_RUNS=200, BENCH_PG_ROUNDS=5)
// 1. start-to-exit of /bin/true: `run()` on the host root vs `run({ image })`
//    (a busybox image), and the helper alone (spawnSync) with and without
//    --image-root;
// 2. first start of a PostgreSQL sandbox: initdb + server ready on
//    127.0.0.1:5432, from the host's binaries (host root) vs the same
//    binaries packed into an image (`images` + a service with `root`), and
//    initdb + start + psql + stop as one `--image` command vs the host root.
// The images are built from host files (test/integration/image-root-fixtures.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { helperPath } from '../src/helper/locate.js';
import { LayerStore } from '../src/layers/store.js';
import { removeTree } from '../src/process/sweep.js';
import { createSandbox } from '../src/sandbox/create.js';
import { normalizeOptions } from '../src/sandbox/options.js';
import { run } from '../src/sandbox/run.js';
import { importTestImages, PG_BIN } from '../test/integration/image-root-fixtures.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const PG_ROUNDS = Number(process.env.BENCH_PG_ROUNDS ?? 5);
const WARMUP = 10;

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

async function time(rounds: number, once: () => Promise<unknown> | unknown, warmup = WARMUP): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + rounds; i++) {
    const start = performance.now();
    await once();
    if (i >= warmup) samples.push(performance.now() - start);
  }
  return median(samples);
}

function check(what: string, result: { exitCode?: number | null; status?: number | null; stderr?: unknown }): void {
  const code = result.exitCode ?? result.status;
  if (code !== 0) throw new Error(`${what}: exit ${code}: ${String(result.stderr ?? '')}`);
}

const work = mkdtempSync(join(tmpdir(), 'sandbox-run-bench-image-'));
process.env.SANDBOX_RUN_HOME = join(work, 'home');
try {
  const store = new LayerStore();
  const images = await importTestImages(store, work);
  const rows: [string, number, string, number][] = [];

  const hostTrue = await time(RUNS, async () => check('host root', await run('/bin/true', [], { workdir: 'none' })));
  const imageTrue = await time(RUNS, async () => check('image root', await run('/bin/true', [], { image: images.busybox, workdir: 'none' })));
  rows.push(['run(): /bin/true, --image busybox', imageTrue, 'run(): /bin/true, host root', hostTrue]);

  const helper = helperPath();
  const lowers = normalizeOptions({ image: images.busybox }).imageRoot!.lowers.join(':');
  const helperHost = await time(RUNS, () => check('helper', spawnSync(helper, ['--', '/bin/true'])));
  const helperImage = await time(RUNS, () => check('helper --image-root', spawnSync(helper, ['--image-root', lowers, '--', '/bin/true'])));
  rows.push(['helper --image-root LOWERS -- /bin/true', helperImage, 'helper -- /bin/true', helperHost]);

  const serverStart = async (fromImage: boolean) => {
    const bin = fromImage ? '' : `${PG_BIN}/`;
    const script = `${bin}initdb -D /tmp/pgdata -A trust -U postgres >/dev/null && exec ${bin}postgres -D /tmp/pgdata -k /tmp -c listen_addresses=127.0.0.1`;
    const sb = await createSandbox({
      workdir: 'none',
      ...(fromImage ? { images: [{ ref: images.postgres, at: '/run/images/pg' }] } : {}),
      env: { LANG: 'C.UTF-8', TZ: 'UTC' },
      services: [
        { name: 'pg', command: ['/bin/sh', '-c', script], ...(fromImage ? { root: '/run/images/pg' } : {}), ready: { tcp: 5432 }, startTimeoutMs: 60_000 },
      ],
    });
    await sb.dispose();
  };
  const pgHost = await time(PG_ROUNDS, () => serverStart(false), 1);
  const pgImage = await time(PG_ROUNDS, () => serverStart(true), 1);
  rows.push(['sandbox + initdb + postgres ready, image service (root)', pgImage, 'same, host binaries, host root', pgHost]);

  const cycle = (bin: string) =>
    [
      `${bin}initdb -D /tmp/db -A trust -U postgres >/dev/null`,
      `${bin}pg_ctl -D /tmp/db -w -l /tmp/pg.log -o "-k /tmp -c listen_addresses=''" start >/dev/null`,
      `${bin}psql -h /tmp -U postgres -Atc 'select 1' >/dev/null`,
      `${bin}pg_ctl -D /tmp/db -m fast -w stop >/dev/null`,
    ].join(' && ');
  const env = { LANG: 'C.UTF-8', TZ: 'UTC' };
  const cycleImage = await time(
    PG_ROUNDS,
    async () => check('image cycle', await run('/bin/sh', ['-c', cycle('')], { image: images.postgres, workdir: 'none', env })),
    1,
  );
  const cycleHost = await time(PG_ROUNDS, async () => check('host cycle', await run('/bin/sh', ['-c', cycle(`${PG_BIN}/`)], { workdir: 'none', env })), 1);
  rows.push(['--image postgres: initdb, start, psql, stop', cycleImage, 'same, host root and binaries', cycleHost]);

  const ms = (value: number) => (value < 100 ? `${value.toFixed(2)} ms` : `${Math.round(value)} ms`);
  console.log(`medians: ${RUNS} runs (${PG_ROUNDS} rounds for PostgreSQL), ${WARMUP} warm-up runs each`);
  console.log('| measured | median | reference | median | ratio |');
  console.log('|---|---|---|---|---|');
  for (const [name, value, reference, ref] of rows) console.log(`| ${name} | ${ms(value)} | ${reference} | ${ms(ref)} | ${(value / ref).toFixed(2)}x |`);
} finally {
  removeTree(work);
}
