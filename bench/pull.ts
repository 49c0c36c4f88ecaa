// Pull time of a ~100 MB image from a local registry (Debian's
// docker-registry on 127.0.0.1, filled by skopeo), side by side in one run
// with `skopeo copy docker://… oci:DIR` of the same image (download and
// write the blobs, no extraction), skopeo copy + tar -xzf of each layer (the
// floor of unpacking, nothing checked, nothing synced) and skopeo copy +
// `sandbox-run import` (what one would do without pull). Each round runs every contender once,
// into a fresh store or directory; medians of BENCH_RUNS (default 3).
//   node --import tsx bench/pull.ts
// The image: three layers from this host's files: /usr/lib/postgresql and
// /usr/share/postgresql, ICU, libxml2 and OpenSSL libraries.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { exportOci, openStore } from '../src/index.js';
import { removeTree } from '../src/process/sweep.js';
import { startRegistry } from '../test/integration/registry-support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const LIBS = '/usr/lib/x86_64-linux-gnu';

const work = mkdtempSync(join(tmpdir(), 'sandbox-run-bench-pull-'));
const registry = await startRegistry(work, join(work, 'storage'));
try {
  // The image, made once per run: three snapshots stacked, exported as an OCI layout, pushed.
  const source = await openStore({ dir: join(work, 'source') });
  const pg = join(work, 'pg');
  mkdirSync(join(pg, 'usr/lib'), { recursive: true });
  mkdirSync(join(pg, 'usr/share'), { recursive: true });
  cpSync('/usr/lib/postgresql', join(pg, 'usr/lib/postgresql'), { recursive: true, verbatimSymlinks: true });
  cpSync('/usr/share/postgresql', join(pg, 'usr/share/postgresql'), { recursive: true, verbatimSymlinks: true });
  const libs = join(work, 'libs');
  mkdirSync(join(libs, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
  for (const name of readdirSync(LIBS).filter((n) => /^lib(icu|xml2|ssl|crypto)[^/]*\.so\.[0-9.]+$/.test(n)))
    copyFileSync(join(LIBS, name), join(libs, 'usr/lib/x86_64-linux-gnu', name));
  const etc = join(work, 'etc');
  mkdirSync(join(etc, 'etc'), { recursive: true });
  cpSync('/etc/os-release', join(etc, 'etc/os-release'));
  await source.snapshot(libs, { name: 'bench-libs' });
  await source.snapshot(pg, { name: 'bench-pg', parent: 'bench-libs' });
  await source.snapshot(etc, { name: 'bench', parent: 'bench-pg' });
  const layout = join(work, 'layout');
  await exportOci(source, 'bench', layout);
  await execa('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${registry.host}/bench:1`]);
  const ref = `${registry.host}/bench:1`;
  const blobs = join(layout, 'blobs', 'sha256');
  const compressed = readdirSync(blobs).reduce((sum, name) => sum + statSync(join(blobs, name)).size, 0);
  const unpacked = (await source.list()).reduce((sum, info) => sum + info.size, 0);
  console.log(`image: ${ref}, 3 layers, ${(unpacked / 1e6).toFixed(0)} MB unpacked, ${(compressed / 1e6).toFixed(0)} MB of blobs (gzip)`);

  let k = 0;
  const fresh = () => join(work, `run-${++k}`);
  const contenders: { name: string; run: () => Promise<unknown> }[] = [
    { name: 'sandbox-run pull (CLI)', run: () => execa(process.execPath, [CLI, 'pull', ref, '--store', fresh()]) },
    { name: 'pullImage (API, in process)', run: async () => (await openStore({ dir: fresh() })).pull(ref) },
    {
      name: 'skopeo copy docker:// oci:DIR',
      run: () => execa('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${fresh()}:bench`]),
    },
    {
      // The floor of unpacking without checks: the blobs fetched by skopeo, each layer gunzipped and untarred (no digest, no fsync).
      name: 'skopeo copy + tar -xzf',
      run: async () => {
        const dir = fresh();
        await execa('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:bench`]);
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
        const blob = (digest: string) => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
        const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
        const tree = fresh();
        mkdirSync(tree);
        for (const layer of manifest.layers) await execa('tar', ['-xzf', blob(layer.digest), '-C', tree]);
      },
    },
    {
      name: 'skopeo copy + sandbox-run import',
      run: async () => {
        const dir = fresh();
        await execa('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:bench`]);
        await execa(process.execPath, [CLI, 'import', dir, '--store', fresh(), '--name', 'bench']);
      },
    },
  ];
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let i = 0; i < RUNS; i++)
    for (const contender of [...contenders.slice(i % contenders.length), ...contenders.slice(0, i % contenders.length)]) {
      const start = performance.now();
      await contender.run();
      samples.get(contender.name)!.push((performance.now() - start) / 1000);
      for (let j = 1; j <= k; j++) if (existsSync(join(work, `run-${j}`))) removeTree(join(work, `run-${j}`));
    }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const reference = median(samples.get('skopeo copy docker:// oci:DIR')!);
  console.log(`\n${RUNS} rounds, median (min-max) seconds; ratio to skopeo copy`);
  for (const [name, values] of samples) {
    const m = median(values);
    const range = `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
    console.log(`${name.padEnd(34)} ${m.toFixed(2).padStart(6)} s  (${range})  ${(m / reference).toFixed(2)}x`);
  }
} finally {
  await registry.stop();
  removeTree(work);
}
