import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { SandboxError } from '../errors.js';
import { removeTree } from '../process/sweep.js';
import { addLayerTree } from './layer-tar.js';
import type { LayerStore } from './store.js';
import { TarWriter } from './tar-writer.js';
import type { LayerInfo } from './types.js';

/** OCI media types (image-spec v1.1). */
export const OCI_MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** Annotation on each OCI layer descriptor: the sandbox-run layer digest it holds. */
export const LAYER_DIGEST_ANNOTATION = 'dev.sandbox-run.layer.digest';

/** A content descriptor as the OCI image spec defines it. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** sha256 of a file, and of its gunzipped content (the OCI diff_id of a gzipped layer). */
async function sha256Gzipped(path: string): Promise<{ compressed: string; uncompressed: string }> {
  const outer = createHash('sha256');
  const inner = createHash('sha256');
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  input.on('data', (chunk) => outer.update(chunk as Buffer));
  const gunzip = createGunzip();
  gunzip.on('data', (chunk: Buffer) => inner.update(chunk));
  await pipeline(input, gunzip);
  return { compressed: outer.digest('hex'), uncompressed: inner.digest('hex') };
}

/** Writes a JSON blob into `blobs/sha256/` and returns its descriptor. */
function jsonBlob(layout: string, mediaType: string, value: unknown, annotations?: Record<string, string>): OciDescriptor {
  const data = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length, ...(annotations ? { annotations } : {}) };
}

/**
 * One layer's tree as a gzipped OCI layer tar: paths relative to the layer
 * root, deletions as `.wh.NAME`, opaque directories with `.wh..wh..opq`, hard
 * links as Link entries. Returns its descriptor and its diff_id (the digest
 * of the uncompressed tar).
 */
async function layerBlob(layout: string, layer: LayerInfo): Promise<{ descriptor: OciDescriptor; diffId: string }> {
  const part = join(layout, 'blobs', 'sha256', `.layer-${process.pid}.part`);
  const writer = new TarWriter(part, true);
  await addLayerTree(writer, layer, '');
  await writer.end();
  const { compressed, uncompressed } = await sha256Gzipped(part);
  const size = statSync(part).size;
  renameSync(part, join(layout, 'blobs', 'sha256', compressed));
  return {
    descriptor: { mediaType: OCI_MEDIA.layer, digest: `sha256:${compressed}`, size, annotations: { [LAYER_DIGEST_ANNOTATION]: layer.digest } },
    diffId: `sha256:${uncompressed}`,
  };
}

/**
 * Writes a layer and its parents as an OCI image layout directory
 * (`oci-layout`, `index.json`, `blobs/sha256/`): one gzipped OCI layer
 * per sandbox-run layer, parent-most first, a minimal image config and a
 * manifest tagged with the layer's name (`org.opencontainers.image.ref.name`).
 * Registry tools push it: `skopeo copy oci:DIR:NAME docker://...`,
 * `crane push DIR ...`, `oras cp --from-oci-layout DIR:NAME ...`. The files
 * sit at the image root (a sandbox mounts a layer wherever it likes). The
 * directory is written aside and renamed, so it appears whole or not at all;
 * it must not exist yet.
 */
export async function exportOci(store: LayerStore, nameOrDigest: string, dir: string, options: { single?: boolean } = {}): Promise<LayerInfo[]> {
  // An archive of a corrupt layer would carry the damage elsewhere: refuse it here, as a mount would.
  await store.lowerDirs(nameOrDigest);
  const top = await store.require(nameOrDigest);
  const chain: LayerInfo[] = [top];
  for (let info = top; !options.single && info.parent; ) {
    info = await store.require(info.parent);
    chain.push(info);
  }
  const target = resolve(dir);
  if (existsSync(target)) throw new SandboxError('BAD_OPTIONS', `export: ${dir} exists already (an OCI layout is written to a new directory)`);
  await using lease = await store.lease(top.digest);
  void lease;
  const aside = join(dirname(target), `.${basename(target)}.${process.pid}.part`);
  mkdirSync(join(aside, 'blobs', 'sha256'), { recursive: true });
  try {
    const layers: OciDescriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of [...chain].reverse()) {
      const { descriptor, diffId } = await layerBlob(aside, layer);
      layers.push(descriptor);
      diffIds.push(diffId);
    }
    const name = top.names[0] ?? top.digest.slice('sha256:'.length, 'sha256:'.length + 12);
    const config = jsonBlob(aside, OCI_MEDIA.config, {
      created: top.created,
      architecture: OCI_ARCH[process.arch] ?? process.arch,
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [...chain].reverse().map((layer) => ({ created: layer.created, created_by: `sandbox-run ${layer.source.kind} (${layer.digest})` })),
    });
    const manifest = jsonBlob(
      aside,
      OCI_MEDIA.manifest,
      { schemaVersion: 2, mediaType: OCI_MEDIA.manifest, config, layers, annotations: { [LAYER_DIGEST_ANNOTATION]: top.digest } },
      { 'org.opencontainers.image.ref.name': name },
    );
    writeFileSync(join(aside, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(join(aside, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA.index, manifests: [manifest] }));
    renameSync(aside, target);
  } catch (error) {
    removeTree(aside);
    throw error;
  }
  return chain;
}
