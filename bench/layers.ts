// Layer snapshot, export, import and verify throughput on a ~300 MB seeded
// PostgreSQL cluster (pgbench -i -s 10), side by side with cp -a, GNU tar and
// sha256sum, in one run: each round runs every contender once, in turn.
//   node --import tsx bench/layers.ts                   (BENCH_RUNS=3 by default; median)
//   VS=/tmp/old/src node --import tsx bench/layers.ts   also another checkout's layer code, in the same rounds
// The cluster is made once in a sandbox and cached in $SANDBOX_RUN_HOME/bench.
// Everything runs with a warm page cache: it measures the tools, not the disk.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { sandboxRunHome } from '../src/home.js';
import { openStore as ourOpenStore, run } from '../src/index.js';
import { findPostgresBindir } from '../src/presets/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function cluster(): Promise<string> {
  const base = join(sandboxRunHome(), 'bench', 'pgbench-s10');
  const data = join(base, 'data');
  if (existsSync(join(data, 'PG_VERSION'))) return data;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const bin = findPostgresBindir();
  const script = [
    `${bin}/initdb -D ${data} -U postgres --auth=trust --no-sync --wal-segsize=1 >/dev/null`,
    `${bin}/pg_ctl start -w -s -D ${data} -l /tmp/log -o "-c listen_addresses='' -k /tmp -c fsync=off"`,
    `${bin}/pgbench -h /tmp -U postgres -i -s 10 -q postgres`,
    `${bin}/pg_ctl stop -s -w -D ${data} -m fast`,
  ].join(' && ');
  console.error('making the cluster (once): initdb + pgbench -i -s 10 ...');
  const result = await run('/bin/sh', ['-c', script], { workdir: 'none', binds: [{ source: base }], all: true });
  if (result.exitCode !== 0) throw new Error(`cluster setup failed:\n${result.all}`);
  return data;
}

type OpenStore = typeof ourOpenStore;
const sides: { name: string; openStore: OpenStore }[] = [{ name: 'sandbox-run', openStore: ourOpenStore }];
if (process.env.VS)
  sides.push({ name: `VS ${process.env.VS}`, openStore: ((await import(join(resolve(process.env.VS), 'index.ts'))) as { openStore: OpenStore }).openStore });

interface Contender {
  name: string;
  /** Untimed set-up before each run. */
  before?: () => void | Promise<void>;
  run: () => Promise<unknown>;
}

/**
 * Runs every contender once per round, RUNS rounds, the order rotated each
 * round (the one after a big write pays for its writeback); median seconds by name.
 */
async function rounds(contenders: Contender[]): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let i = 0; i < RUNS; i++)
    for (const contender of [...contenders.slice(i % contenders.length), ...contenders.slice(0, i % contenders.length)]) {
      await contender.before?.();
      const start = performance.now();
      await contender.run();
      samples.get(contender.name)!.push((performance.now() - start) / 1000);
    }
  return new Map([...samples].map(([name, xs]) => [name, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]));
}

const data = await cluster();
const bytes = Number((await execa('du', ['-sb', data])).stdout.split('\t')[0]);
const work = mkdtempSync(join(sandboxRunHome(), 'bench', 'run-'));
try {
  await execa('tar', ['-cf', '/dev/null', '-C', data, '.']); // warm the page cache
  const dest = join(work, 'dest');
  const clean = () => rmSync(dest, { recursive: true, force: true });
  const emptyDest = () => {
    clean();
    mkdirSync(dest);
  };
  const gnuTar = join(work, 'gnu.tar');
  let storeN = 0;
  const freshStore = (side: (typeof sides)[number]) => side.openStore({ dir: join(work, `store-${++storeN}`) });

  // The store fsyncs a layer before it commits it; `sync FILE...` (fsync of each) makes the references do the same work.
  const fsyncTree = async (dir: string) => {
    const paths = (await execa('find', [dir, '-type', 'f', '-o', '-type', 'd'])).stdout.split('\n');
    for (let i = 0; i < paths.length; i += 500) await execa('sync', paths.slice(i, i + 500));
  };
  // One store per side holding the snapshot, for export and verify; one archive per side, for import.
  const stores = [];
  for (const [i, side] of sides.entries()) {
    const store = await freshStore(side);
    await store.snapshot(data, { name: 'pg' });
    const archive = join(work, `export-${i}.tar`);
    await store.export('pg', archive);
    stores.push({ side, store, archive });
  }
  const method = (await stores[0]!.store.require('pg')).source;

  const timed = {
    ...Object.fromEntries([
      ...(await rounds([
        { name: 'cp -a', before: clean, run: () => execa('cp', ['-a', data, dest]) },
        {
          name: 'cp -a + fsync',
          before: clean,
          run: async () => {
            await execa('cp', ['-a', data, dest]);
            await fsyncTree(dest);
          },
        },
        ...stores.map(({ side }) => ({ name: `snapshot ${side.name}`, run: async () => (await freshStore(side)).snapshot(data, { name: 'pg' }) })),
      ])),
      ...(await rounds([
        { name: 'tar -c', run: () => execa('tar', ['-cf', gnuTar, '-C', data, '.']) },
        ...stores.map(({ side, store }) => ({ name: `export ${side.name}`, run: () => store.export('pg', join(work, 'again.tar')) })),
      ])),
      ...(await rounds([
        { name: 'tar -x', before: emptyDest, run: () => execa('tar', ['-xf', gnuTar, '-C', dest]) },
        {
          name: 'tar -x + fsync',
          before: emptyDest,
          run: async () => {
            await execa('tar', ['-xf', gnuTar, '-C', dest]);
            await fsyncTree(dest);
          },
        },
        ...stores.map(({ side, archive }) => ({ name: `import ${side.name}`, run: async () => (await freshStore(side)).import(archive) })),
      ])),
      ...(await rounds([
        // What a verify does: read every file and hash it.
        { name: 'sha256sum of tar -c', run: () => execa('sh', ['-c', `tar -cf - -C ${data} . | sha256sum`]) },
        {
          name: 'sha256sum per file, 2 procs',
          run: () => execa('sh', ['-c', `cd ${data} && find . -type f -print0 | xargs -0 -P2 -n64 sha256sum >/dev/null`]),
        },
        ...stores.map(({ side, store }) => ({ name: `verify ${side.name}`, run: () => store.verify('pg') })),
      ])),
    ]),
  } as Record<string, number>;

  const mb = bytes / 1e6;
  const cell = (seconds: number) => `${(mb / seconds).toFixed(0)} MB/s (${seconds.toFixed(2)} s)`;
  console.log(`cluster: ${mb.toFixed(0)} MB, ${RUNS} interleaved rounds, median; snapshot method: ${method.kind === 'snapshot' ? method.method : '?'}`);
  console.log(`| operation | ${sides.map((s) => s.name).join(' | ')} | reference | time ratio${sides.length > 1 ? 's' : ''} |`);
  console.log(`|---|${sides.map(() => '---|').join('')}---|---|`);
  const row = (op: string, reference: string) => {
    const ours = sides.map((side) => timed[`${op} ${side.name}`]!);
    console.log(
      `| ${op} | ${ours.map(cell).join(' | ')} | ${reference} ${cell(timed[reference]!)} | ` +
        `${ours.map((t) => `${(t / timed[reference]!).toFixed(2)}x`).join(' / ')} |`,
    );
  };
  row('snapshot', 'cp -a');
  row('snapshot', 'cp -a + fsync');
  row('export', 'tar -c');
  row('import', 'tar -x');
  row('import', 'tar -x + fsync');
  row('verify', 'sha256sum of tar -c');
  row('verify', 'sha256sum per file, 2 procs');
  console.log(
    `load average during the run: ${(await execa('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')} on ${availableParallelism()} CPUs`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
