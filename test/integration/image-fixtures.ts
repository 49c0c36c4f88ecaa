// Images written by the tests themselves (no registry, no docker): OCI
// layouts, multi-platform indexes and docker save archives, from tar
// entries given as data.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

export interface Entry {
  path: string;
  type?: string;
  mode?: number;
  linkpath?: string;
  data?: string | Buffer;
}

export function tarEntry(spec: Entry): Buffer {
  const data = Buffer.from(spec.data ?? '');
  const header = new Header({
    path: spec.path,
    type: (spec.type ?? 'File') as 'File',
    mode: spec.mode ?? 0o644,
    size: data.length,
    mtime: new Date(0),
    uid: 0,
    gid: 0,
    ...(spec.linkpath ? { linkpath: spec.linkpath } : {}),
  });
  header.encode();
  return Buffer.concat([header.block!, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A tar of the entries, with the two zero blocks that end it. */
export function tarOf(entries: Entry[]): Buffer {
  return Buffer.concat([...entries.map(tarEntry), Buffer.alloc(1024)]);
}

export const sha = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
export const hostArch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;

export type Compression = 'gzip' | 'zstd' | 'none';

function compress(tar: Buffer, how: Compression): Buffer {
  if (how === 'gzip') return gzipSync(tar);
  if (how === 'zstd') return execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 1 << 30 });
  return tar;
}

const LAYER_MEDIA: Record<Compression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

export interface ImageSpec {
  /** Layer tars, bottom first. */
  layers: Buffer[];
  compression?: Compression;
  architecture?: string;
  config?: Record<string, unknown>;
  /** Overrides: a wrong diff_id, a wrong blob digest. */
  diffIds?: string[];
  layerDigests?: string[];
}

/** Writes the blobs of one image into `layout`; returns its manifest descriptor. */
export function writeImage(layout: string, spec: ImageSpec): { mediaType: string; digest: string; size: number } {
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (data: Buffer, name = sha(data)) => {
    writeFileSync(join(blobs, name.slice('sha256:'.length)), data);
    return name;
  };
  const how = spec.compression ?? 'gzip';
  const layers = spec.layers.map((tar, i) => {
    const data = compress(tar, how);
    const digest = spec.layerDigests?.[i] ?? sha(data);
    blob(data, digest);
    return { mediaType: LAYER_MEDIA[how], digest, size: data.length };
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: spec.architecture ?? hostArch,
      os: 'linux',
      config: spec.config ?? {},
      rootfs: { type: 'layers', diff_ids: spec.diffIds ?? spec.layers.map((tar) => sha(tar)) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob(config), size: config.length },
      layers,
    }),
  );
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: blob(manifest), size: manifest.length };
}

/** An OCI image layout with one image (or one per platform: a multi-arch index), named `ref` (ref.name). */
export function ociLayout(dir: string, images: (ImageSpec & { platform?: boolean })[], ref = 'test:1'): string {
  mkdirSync(dir, { recursive: true });
  const manifests = images.map((spec) => ({
    ...writeImage(dir, spec),
    ...(spec.platform ? { platform: { os: 'linux', architecture: spec.architecture ?? hostArch } } : {}),
    annotations: { 'org.opencontainers.image.ref.name': ref },
  }));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  return dir;
}

/** A `docker save` archive in the legacy layout (<id>/layer.tar, <config hex>.json, manifest.json, repositories). */
export function dockerSave(file: string, layers: Buffer[], repoTag = 'example/app:2', config: Record<string, unknown> = {}): string {
  const entries: Entry[] = [];
  const paths: string[] = [];
  layers.forEach((tar, i) => {
    const id = createHash('sha256').update(`layer${i}`).update(tar).digest('hex');
    entries.push({ path: `${id}/`, type: 'Directory', mode: 0o755 }, { path: `${id}/VERSION`, data: '1.0' }, { path: `${id}/layer.tar`, data: tar });
    paths.push(`${id}/layer.tar`);
  });
  const configJson = JSON.stringify({ architecture: hostArch, os: 'linux', config, rootfs: { type: 'layers', diff_ids: layers.map((tar) => sha(tar)) } });
  const configName = `${sha(configJson).slice('sha256:'.length)}.json`;
  entries.push({ path: configName, data: configJson });
  entries.push({ path: 'manifest.json', data: JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: paths }]) });
  const [repo, tag] = repoTag.split(/:(?=[^:]*$)/);
  entries.push({ path: 'repositories', data: JSON.stringify({ [repo!]: { [tag!]: paths.at(-1)!.split('/')[0] } }) });
  writeFileSync(file, tarOf(entries));
  return file;
}
