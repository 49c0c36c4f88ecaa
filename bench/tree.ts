// The layer code's tree work on a layer of 2,000+ files: the opaque-mark walk
// (walkTree), sha256 of many small and of a few big files (hashFiles), and an
// import whose layer holds 1,000 whiteouts and 40 opaque directories.
//   node --import tsx bench/tree.ts                      (BENCH_RUNS=7; median ms)
//   VS=/tmp/old/src node --import tsx bench/tree.ts      also another checkout's sources, run in turn
//                                                        with these, and the median of the pairwise ratios
// Warm page cache: it measures the code, not the disk.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
type Tree = typeof import('../src/layers/tree.js');
type Api = typeof import('../src/index.js');
const load = async (src: string) => ({
  src,
  api: (await import(join(src, 'index.ts'))) as Api,
  tree: (await import(join(src, 'layers/tree.ts'))) as Tree,
});
const ours = await load(new URL('../src', import.meta.url).pathname);
const other = process.env.VS ? await load(resolve(process.env.VS)) : undefined;
const sides = other ? [ours, other] : [ours];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `what` for each side in turn, RUNS rounds; prints medians and the median ratio ours/other. */
async function row<T>(
  label: string,
  what: (side: (typeof sides)[number], prepared: T) => Promise<unknown>,
  prepare?: (side: (typeof sides)[number]) => Promise<T>,
): Promise<void> {
  const samples = sides.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++)
    for (const [k, side] of sides.entries()) {
      const prepared = (await prepare?.(side)) as T;
      const start = performance.now();
      await what(side, prepared);
      samples[k]!.push(performance.now() - start);
    }
  const figures = samples.map((xs) => median(xs).toFixed(1).padStart(8));
  const ratio = other ? `  ${median(samples[0]!.map((x, i) => x / samples[1]![i]!)).toFixed(2)}x` : '';
  console.log(`${label.padEnd(58)}${figures.join('')}${ratio}`);
}

const work = mkdtempSync(join(tmpdir(), 'sandbox-run-bench-tree-'));
try {
  // 40 dirs x 50 files of 8 KB; 64 files of 4 MB.
  const small = join(work, 'small');
  const smallPaths: string[] = [];
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(small, `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) {
      writeFileSync(join(small, `d${d}`, `f${f}`), randomBytes(8192));
      smallPaths.push(`d${d}/f${f}`);
    }
  }
  const big = join(work, 'big');
  mkdirSync(big);
  const bigPaths = Array.from({ length: 64 }, (_, i) => `f${i}`);
  for (const path of bigPaths) writeFileSync(join(big, path), randomBytes(4 << 20));

  // A child layer: every file of 20 dirs deleted (1,000 whiteouts), the other 20 dirs removed and made again (opaque).
  const store = await ours.api.openStore({ dir: join(work, 'store') });
  await store.snapshot(small, { name: 'base' });
  const script = 'cd /tmp/l && for d in $(seq 0 19); do rm d$d/f*; done && for d in $(seq 20 39); do rm -r d$d && mkdir d$d && echo n > d$d/new; done';
  await store.build({ name: 'child', parent: 'base', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', script] });
  const child = await store.require('child');
  const entries = await ours.tree.walkTree(child.path);
  const archive = join(work, 'child.tar');
  await store.export('child', archive, { single: true });

  const base = await store.require('base');
  const counts = `${entries.filter((e) => e.type === 'whiteout').length} whiteouts, ${entries.filter((e) => e.opaque).length} opaque dirs`;
  console.log(`median ms of ${RUNS} runs: ${sides.map((side) => side.src).join(' | ')}${other ? ' | ratio' : ''}`);
  await row(`opaqueDirs, layer of ${smallPaths.length} files in 40 dirs`, ({ tree }) => tree.opaqueDirs(base.path));
  await row(`walkTree, the same`, ({ tree }) => tree.walkTree(base.path));
  await row(`walkTree, child layer (${counts})`, ({ tree }) => tree.walkTree(child.path));
  await row(`hashFiles, ${smallPaths.length} x 8 KB`, ({ tree }) => tree.hashFiles(small, smallPaths));
  await row(`hashFiles, 64 x 4 MB`, ({ tree }) => tree.hashFiles(big, bigPaths));
  // Each import goes to a fresh store that has the parent already (made untimed).
  let n = 0;
  await row<Awaited<ReturnType<Api['openStore']>>>(
    `import of the child layer (${counts})`,
    (_side, into) => into.import(archive),
    async ({ api }) => {
      const fresh = await api.openStore({ dir: join(work, `import-${++n}`) });
      await fresh.snapshot(small, { name: 'base' });
      return fresh;
    },
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
