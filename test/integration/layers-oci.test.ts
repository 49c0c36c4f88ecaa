// Export as an OCI image layout directory (what skopeo, crane and oras push).
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { exportOci, LAYER_DIGEST_ANNOTATION, OCI_MEDIA, type OciDescriptor } from '../../src/layers/oci.js';
import { CLI, tempDir } from './support.js';

const exec = promisify(execFile);
const skopeo = spawnSync('skopeo', ['--version']).status === 0;

let root: { path: string; remove: () => void };
beforeAll(() => {
  root = tempDir('sandbox-run-oci-');
});
afterAll(() => root.remove());

const blob = (layout: string, digest: string) => readFileSync(join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
const sha = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('export --format oci', () => {
  it('writes a valid image layout: index -> manifest -> config and one tar per layer with OCI whiteouts', async () => {
    const store = await openStore({ dir: join(root.path, 'store') });
    const src = join(root.path, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a\n');
    writeFileSync(join(src, 'sub/b.txt'), 'b\n');
    const base = await store.snapshot(src, { name: 'base' });
    const child = await store.build({
      name: 'child',
      parent: 'base',
      mountPoint: '/tmp/l',
      run: ['/bin/sh', '-c', 'rm /tmp/l/a.txt; rm -r /tmp/l/sub; mkdir /tmp/l/sub; echo n > /tmp/l/sub/new'],
    });

    const layout = join(root.path, 'layout');
    expect((await exportOci(store, 'child', layout)).map((info) => info.digest)).toEqual([child.digest, base.digest]);
    expect(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: OciDescriptor[] };
    expect(index.manifests).toHaveLength(1);
    const [described] = index.manifests;
    expect(described).toMatchObject({ mediaType: OCI_MEDIA.manifest, annotations: { 'org.opencontainers.image.ref.name': 'child' } });
    // Every blob is named by its content's digest and has the described size.
    for (const name of readdirSync(join(layout, 'blobs/sha256'))) expect(sha(blob(layout, `sha256:${name}`))).toBe(`sha256:${name}`);
    const manifestData = blob(layout, described!.digest);
    expect(manifestData.length).toBe(described!.size);
    const manifest = JSON.parse(manifestData.toString()) as { schemaVersion: number; config: OciDescriptor; layers: OciDescriptor[] };
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.layers.map((layer) => layer.annotations?.[LAYER_DIGEST_ANNOTATION])).toEqual([base.digest, child.digest]);
    const config = JSON.parse(blob(layout, manifest.config.digest).toString()) as { os: string; rootfs: { type: string; diff_ids: string[] } };
    expect(config.os).toBe('linux');
    // diff_ids are the digests of the uncompressed layer tars.
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: manifest.layers.map((layer) => sha(gunzipSync(blob(layout, layer.digest)))) });
    expect(manifest.layers.map((layer) => layer.mediaType)).toEqual([OCI_MEDIA.layer, OCI_MEDIA.layer]);
    expect(OCI_MEDIA.layer).toBe('application/vnd.oci.image.layer.v1.tar+gzip');

    const list = async (layer: OciDescriptor) => (await exec('tar', ['-tzvf', join(layout, 'blobs/sha256', layer.digest.slice(7))])).stdout;
    const baseList = await list(manifest.layers[0]!);
    expect(baseList).toMatch(/ a\.txt\n/);
    expect(baseList).toMatch(/ sub\/b\.txt\n/);
    const childList = await list(manifest.layers[1]!);
    expect(childList).toMatch(/ \.wh\.a\.txt\n/);
    expect(childList).toMatch(/ sub\/\.wh\.\.wh\.\.opq\n/);
    expect(childList).toMatch(/ sub\/new\n/);
    expect(childList).not.toMatch(/ \.\/?\n|^d.* \/\n/m);

    // The CLI face, and a layout is never written over an existing directory.
    await expect(exportOci(store, 'child', layout)).rejects.toThrow(/exists already/);
    const viaCli = join(root.path, 'cli-layout');
    const out = await exec(process.execPath, [CLI, 'export', 'child', '--format', 'oci', '-o', viaCli, '--single', '--store', store.dir]);
    expect(out.stdout).toMatch(/^exported child sha256:/);
    const cliIndex = JSON.parse(readFileSync(join(viaCli, 'index.json'), 'utf8')) as { manifests: OciDescriptor[] };
    expect(JSON.parse(blob(viaCli, cliIndex.manifests[0]!.digest).toString()).layers).toHaveLength(1);
    expect(readdirSync(root.path).filter((name) => name.endsWith('.part'))).toEqual([]);

    // A registry tool reads it and verifies every blob on copy (where skopeo is installed).
    if (skopeo) {
      const inspected = JSON.parse((await exec('skopeo', ['inspect', `oci:${layout}:child`])).stdout) as { Layers: string[]; Os: string };
      expect(inspected).toMatchObject({ Os: 'linux', Layers: manifest.layers.map((layer) => layer.digest) });
      await exec('skopeo', ['copy', '-q', `oci:${layout}:child`, `dir:${join(root.path, 'copied')}`]);
    }
  });
});
