// Layer snapshot, export and import throughput on a ~300 MB seeded PostgreSQL
// cluster (pgbench -i -s 10), side by side with cp -a and GNU tar, in one run.
//   node --import tsx bench/layers.ts      (BENCH_RUNS=3 by default; median)
// The cluster is made once in a sandbox and cached in $SANDBOX_RUN_HOME/bench.
// Everything runs with a warm page cache: it measures the tools, not the disk.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { openStore, run } from '../src/index.js';
import { sandboxRunHome } from '../src/home.js';
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

async function median(what: () => Promise<void>, before?: () => void): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    before?.();
    const start = performance.now();
    await what();
    samples.push((performance.now() - start) / 1000);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

const data = await cluster();
const bytes = Number((await execa('du', ['-sb', data])).stdout.split('\t')[0]);
const work = mkdtempSync(join(sandboxRunHome(), 'bench', 'run-'));
try {
  await execa('tar', ['-cf', '/dev/null', '-C', data, '.']); // warm the page cache
  const dest = join(work, 'dest');
  const clean = () => rmSync(dest, { recursive: true, force: true });
  const gnuTar = join(work, 'gnu.tar');
  const ourTar = join(work, 'ours.tar');
  let storeN = 0;
  const freshStore = () => openStore({ dir: join(work, `store-${++storeN}`) });

  // The store fsyncs a layer before it commits it; `sync FILE...` (fsync of each) makes the references do the same work.
  const fsyncTree = async (dir: string) => {
    const paths = (await execa('find', [dir, '-type', 'f', '-o', '-type', 'd'])).stdout.split('\n');
    for (let i = 0; i < paths.length; i += 500) await execa('sync', paths.slice(i, i + 500));
  };
  const cp = await median(() => execa('cp', ['-a', data, dest]).then(() => undefined), clean);
  const cpSync = await median(async () => {
    await execa('cp', ['-a', data, dest]);
    await fsyncTree(dest);
  }, clean);
  const snapshotStores: string[] = [];
  const snapshot = await median(async () => {
    const store = await freshStore();
    snapshotStores.push(store.dir);
    await store.snapshot(data, { name: 'pg' });
  });
  const store = await openStore({ dir: snapshotStores[0]! });
  const method = (await store.require('pg')).source;
  const tarCreate = await median(() => execa('tar', ['-cf', gnuTar, '-C', data, '.']).then(() => undefined));
  const exportTime = await median(() => store.export('pg', ourTar).then(() => undefined));
  const emptyDest = () => {
    clean();
    mkdirSync(dest);
  };
  const tarExtract = await median(() => execa('tar', ['-xf', gnuTar, '-C', dest]).then(() => undefined), emptyDest);
  const tarExtractSync = await median(async () => {
    await execa('tar', ['-xf', gnuTar, '-C', dest]);
    await fsyncTree(dest);
  }, emptyDest);
  const importTime = await median(async () => {
    await (await freshStore()).import(ourTar);
  });

  const mb = bytes / 1e6;
  const row = (name: string, ours: number, theirsName: string, theirs: number) =>
    `| ${name} | ${(mb / ours).toFixed(0)} MB/s (${ours.toFixed(2)} s) | ${theirsName} ${(mb / theirs).toFixed(0)} MB/s (${theirs.toFixed(2)} s) | ${(ours / theirs).toFixed(2)}x |`;
  console.log(`cluster: ${mb.toFixed(0)} MB, ${RUNS} runs each, median; snapshot method: ${method.kind === 'snapshot' ? method.method : '?'}`);
  console.log('| operation | sandbox-run | reference | time ratio |');
  console.log('|---|---|---|---|');
  console.log(row('snapshot', snapshot, 'cp -a', cp));
  console.log(row('snapshot', snapshot, 'cp -a + fsync', cpSync));
  console.log(row('export (tar)', exportTime, 'tar -c', tarCreate));
  console.log(row('import (tar)', importTime, 'tar -x', tarExtract));
  console.log(row('import (tar)', importTime, 'tar -x + fsync', tarExtractSync));
  console.log(`load average during the run: ${(await execa('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')} on ${availableParallelism()} CPUs`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
