// What checking a layer before mounting costs (the seal: lstat of every
// entry) against a full verify (re-digest every byte), on a directory given
// as argument (e.g. a pgbench -i -s 10 cluster, as bench/layers.ts makes).
//   node --import tsx bench/seal.ts DIR
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStore } from '../src/index.js';
import { verifyLayer } from '../src/layers/integrity.js';
import { checkSeal } from '../src/layers/seal.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: bench/seal.ts DIR');
const storeDir = mkdtempSync(join(tmpdir(), 'seal-bench-'));
try {
  const store = await openStore({ dir: storeDir });
  const info = await store.snapshot(dir, { name: 'bench' });
  const layerDir = join(storeDir, 'layers', info.digest.slice('sha256:'.length));
  const time = async (what: () => unknown, runs = 5): Promise<number> => {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await what();
      samples.push(performance.now() - start);
    }
    return samples.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
  };
  const seal = await time(() => checkSeal(layerDir), 9);
  const first = await time(() => store.lowerDirs('bench'), 1); // memoized after this
  const memo = await time(() => store.lowerDirs('bench'), 9);
  const full = await time(() => verifyLayer(layerDir, info.digest.slice('sha256:'.length)), 3);
  console.log(
    JSON.stringify({
      bytes: info.size,
      seal_ms: +seal.toFixed(1),
      first_lowerDirs_ms: +first.toFixed(1),
      memoized_lowerDirs_ms: +memo.toFixed(2),
      full_verify_ms: +full.toFixed(0),
    }),
  );
} finally {
  rmSync(storeDir, { recursive: true, force: true });
}
