import { createHash } from 'node:crypto';
import { closeSync, createReadStream, lstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, join, posix, sep } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { climbsOut } from './archive.js';
import { LAYER_DIGEST_ANNOTATION } from './oci.js';
import {
  checkDescriptor,
  type Descriptor,
  type ImageConfig,
  ImageRefused,
  INDEX_TYPES,
  MANIFEST_TYPES,
  type Platform,
  readConfig,
  refName,
  selectByRef,
  selectPlatform,
  shortReference,
} from './oci-index.js';
import { extractChecked } from './tar-reader.js';

/** One layer blob of an image, located and (where the format says it) with its expected digest. */
export interface LayerBlob {
  /** Host path, checked to lie inside the image. */
  file: string;
  /** The blob's own sha256 (OCI layouts, docker save of Docker 25+); legacy docker save has none: its diff_id is the check. */
  digest?: string;
  size?: number;
  mediaType?: string;
  /** The uncompressed tar's digest, from the config. */
  diffId: string;
}

/** An image chosen and its metadata verified, ready to extract. */
export interface ImagePlan {
  format: 'oci' | 'docker';
  /** Written by sandbox-run's own `export --format oci`: its ref.name is a layer name, kept as is. */
  ownExport?: boolean;
  /** The name found in the image (annotation or RepoTags), if any. */
  reference?: string;
  image: ImageConfig;
  platform: Platform;
  layers: LayerBlob[];
}

/** JSON documents (index, manifest, config) are small: a bigger one is a hostile one. */
const MAX_JSON = 8 << 20;

/** Layer media types imported (and pulled); foreign or unknown ones are refused. */
export const LAYER_TYPES = [
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
];

/**
 * The host path of `rel` inside the image directory `root`: relative, no
 * `..`, and (symlinks of an unpacked archive followed) still inside `root`
 * and a regular file. Everything the image's JSON names is opened through here.
 */
export function confinedFile(root: string, rel: string, what: string): string {
  if (typeof rel !== 'string' || !rel || rel.startsWith('/') || rel.split('/').includes('..'))
    throw new ImageRefused(`${what} points outside the image ('${String(rel)}')`);
  const path = join(root, rel);
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw new ImageRefused(`${what} is missing ('${rel}')`);
  }
  if (!real.startsWith(realpathSync(root) + sep)) throw new ImageRefused(`${what} points outside the image ('${rel}' leads out through a symlink)`);
  if (!statSync(real).isFile()) throw new ImageRefused(`${what} is not a regular file ('${rel}')`);
  return real;
}

/** Reads a JSON file (bounded), checking its sha256 and size when a descriptor gives them. */
function readJson(file: string, what: string, expect?: { digest: string; size?: number }): unknown {
  if (statSync(file).size > MAX_JSON) throw new ImageRefused(`${what} is over ${MAX_JSON >> 20} MiB`);
  const data = readFileSync(file);
  if (expect) {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (digest !== expect.digest) throw new ImageRefused(`digest mismatch: ${what} should be ${expect.digest}, its content is ${digest}`);
    if (expect.size !== undefined && data.length !== expect.size)
      throw new ImageRefused(`size mismatch: ${what} should be ${expect.size} bytes, it is ${data.length}`);
  }
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new ImageRefused(`${what} is not valid JSON`);
  }
}

const blobFile = (root: string, d: Descriptor, what: string) => confinedFile(root, `blobs/sha256/${d.digest.slice('sha256:'.length)}`, what);

/** Checks the config and lines its diff_ids up with the layers. */
function withConfig(configJson: unknown, configDigest: string, layers: Omit<LayerBlob, 'diffId'>[], want: Platform, asked: boolean) {
  const { diffIds, image, platform } = readConfig(configJson, configDigest);
  if (diffIds.length !== layers.length) throw new ImageRefused(`the manifest lists ${layers.length} layers, the config's rootfs.diff_ids ${diffIds.length}`);
  // A single-image layout has no platform in its index: the config says what it is for.
  if (platform.os !== 'unknown' && (platform.os !== want.os || platform.architecture !== want.architecture))
    throw new ImageRefused(
      `the image is for ${image.platform}, not ${want.os}/${want.architecture}${asked ? '' : ' (this host)'}: ` +
        `pass --platform ${image.platform} to import it anyway`,
    );
  return { image, platform, layers: layers.map((layer, i) => ({ ...layer, diffId: diffIds[i]! })) };
}

/** An OCI image layout: index.json -> (nested index ->) manifest -> config and layers, every blob by digest. */
function planOci(root: string, ref: string | undefined, want: Platform, asked: boolean): ImagePlan {
  const index = readJson(confinedFile(root, 'index.json', 'index.json'), 'index.json') as { manifests?: unknown };
  if (!index || typeof index !== 'object' || !Array.isArray(index.manifests)) throw new ImageRefused('index.json has no manifests list');
  let entries = index.manifests.map((d, i) => checkDescriptor(d, `index.json manifest ${i}`));
  entries = selectByRef(entries, ref);
  let reference = entries.map(refName).find(Boolean);
  // An image index inside (skopeo --all, crane, docker buildx): descend, at most a few levels.
  for (let depth = 0; entries.length === 1 && INDEX_TYPES.includes(entries[0]!.mediaType ?? ''); depth++) {
    if (depth > 4) throw new ImageRefused('image indexes nested too deep');
    const nested = readJson(blobFile(root, entries[0]!, `index ${entries[0]!.digest}`), `index ${entries[0]!.digest}`, entries[0]!) as { manifests?: unknown };
    if (!nested || !Array.isArray(nested.manifests)) throw new ImageRefused(`index ${entries[0]!.digest} has no manifests list`);
    entries = nested.manifests.map((d, i) => checkDescriptor(d, `index ${entries[0]!.digest} manifest ${i}`));
  }
  const chosen = selectPlatform(entries, want, asked);
  if (chosen.mediaType && !MANIFEST_TYPES.includes(chosen.mediaType))
    throw new ImageRefused(`manifest ${chosen.digest} has media type ${chosen.mediaType}, not an image manifest`);
  const manifest = readJson(blobFile(root, chosen, `manifest ${chosen.digest}`), `manifest ${chosen.digest}`, chosen) as {
    config?: unknown;
    layers?: unknown;
    annotations?: Record<string, unknown>;
  };
  if (!manifest || typeof manifest !== 'object' || !Array.isArray(manifest.layers)) throw new ImageRefused(`manifest ${chosen.digest} has no layers list`);
  const config = checkDescriptor(manifest.config, 'the manifest config');
  const layers = manifest.layers.map((value, i) => {
    const d = checkDescriptor(value, `layer ${i}`);
    if (d.mediaType && !LAYER_TYPES.includes(d.mediaType))
      throw new ImageRefused(`layer ${i} has media type ${d.mediaType} (foreign or unknown layers are not imported)`);
    return { file: blobFile(root, d, `layer ${d.digest}`), digest: d.digest, size: d.size, ...(d.mediaType ? { mediaType: d.mediaType } : {}) };
  });
  const configJson = readJson(blobFile(root, config, `config ${config.digest}`), `config ${config.digest}`, config);
  reference ??= refName(chosen);
  const ownExport = typeof manifest.annotations?.[LAYER_DIGEST_ANNOTATION] === 'string';
  return {
    format: 'oci',
    ...(ownExport ? { ownExport } : {}),
    ...(reference ? { reference } : {}),
    ...withConfig(configJson, config.digest, layers, want, asked),
  };
}

/** `docker save`: manifest.json lists Config and Layers by path (`<hex>.json` + `<id>/layer.tar`, or blobs/sha256/ since Docker 25). */
function planDocker(root: string, ref: string | undefined, want: Platform, asked: boolean): ImagePlan {
  const list = readJson(confinedFile(root, 'manifest.json', 'manifest.json'), 'manifest.json') as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
  if (!Array.isArray(list) || !list.length) throw new ImageRefused('manifest.json is not a docker save manifest (a non-empty list)');
  const tags = (entry: (typeof list)[number]) => (Array.isArray(entry?.RepoTags) ? entry.RepoTags.filter((t): t is string => typeof t === 'string') : []);
  const picked = ref ? list.filter((entry) => tags(entry).some((tag) => shortReference(tag) === shortReference(ref))) : list;
  if (!picked.length) throw new ImageRefused(`no image tagged '${ref}' in manifest.json (it has: ${list.flatMap(tags).join(', ') || 'no tags'})`);
  if (picked.length > 1) throw new ImageRefused(`manifest.json holds ${picked.length} images (${list.flatMap(tags).join(', ')}): choose one with --ref`);
  const entry = picked[0]!;
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new ImageRefused('manifest.json entry lacks Config or Layers');
  // The config's file name is its digest (the image ID): that is what verifies it.
  const configHex = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(entry.Config)?.[1];
  if (!configHex) throw new ImageRefused(`cannot verify the config '${entry.Config}': its name is not its sha256`);
  const configDigest = `sha256:${configHex}`;
  const configJson = readJson(confinedFile(root, entry.Config, 'the config'), `config ${entry.Config}`, { digest: configDigest });
  const layers = entry.Layers.map((path, i) => {
    const file = confinedFile(root, String(path), `layer ${i}`);
    const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(String(path))?.[1];
    return { file, ...(blob ? { digest: `sha256:${blob}`, size: lstatSync(file).size } : {}) };
  });
  const reference = ref ?? tags(entry)[0];
  return { format: 'docker', ...(reference ? { reference } : {}), ...withConfig(configJson, configDigest, layers, want, asked) };
}

/** Reads an unpacked image (OCI layout, else docker save) at `root`. */
export function planImage(root: string, options: { ref?: string; platform: Platform; asked: boolean }): ImagePlan {
  const has = (name: string) => !!lstatSync(join(root, name), { throwIfNoEntry: false });
  if (has('index.json')) return planOci(root, options.ref, options.platform, options.asked);
  if (has('manifest.json')) return planDocker(root, options.ref, options.platform, options.asked);
  throw new ImageRefused('neither an OCI image layout (index.json) nor a docker save archive (manifest.json)');
}

/** Why an entry of an image archive (the outer tar) is unsafe: only files, dirs, and relative links within it. */
function outerUnsafe(entry: ReadEntry): string | undefined {
  const path = entry.path.replace(/\/+$/, '');
  if (path.startsWith('/')) return `absolute path '${entry.path}'`;
  if (path.split('/').includes('..')) return `path '${entry.path}' climbs out with '..'`;
  if (entry.type === 'Directory' || entry.type === 'File' || entry.type === 'OldFile') {
    if ((entry.mode ?? 0) & 0o6000) return `'${entry.path}' has the setuid or setgid bit`;
    return entry.type === 'Directory' && ((entry.mode ?? 0) & 0o500) !== 0o500 ? `directory '${entry.path}' is not readable by its owner` : undefined;
  }
  // Legacy docker save links a repeated layer to its first copy (../<id>/layer.tar).
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? '';
    return target.startsWith('/') || climbsOut(posix.dirname(path), target) ? `symlink '${entry.path}' points out of the archive ('${target}')` : undefined;
  }
  return `'${entry.path}' is a ${entry.type} (an image archive holds files, directories and relative symlinks)`;
}

/** Unpacks an image archive (a tar of a layout or a docker save; gzip detected) into the empty dir `dest`. */
export async function unpackImageArchive(file: string, dest: string): Promise<void> {
  await extractChecked(file, dest, outerUnsafe);
}

/** The name a layout's directory or archive gives an image whose ref.name is a bare tag. */
export function layoutName(path: string): string {
  return basename(path).replace(/\.(tar|tar\.gz|tgz|tar\.zst|oci)$/, '') || 'image';
}

/** Whether `file` is a sandbox-run layer archive (its first entry: manifest.json of format sandbox-run-layers), not an image. */
export async function isLayerArchive(file: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let decided = false;
    const input = createReadStream(file, { highWaterMark: 1 << 16 });
    const decide = (answer: boolean) => {
      if (decided) return;
      decided = true;
      input.destroy();
      resolve(answer);
    };
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        if (entry.path !== 'manifest.json' || entry.size > MAX_JSON) return decide(false);
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => chunks.push(chunk));
        entry.on('end', () => {
          try {
            decide((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { format?: unknown }).format === 'sandbox-run-layers');
          } catch {
            decide(false);
          }
        });
      },
    });
    // Not a tar at all: the layer import says what is wrong with it.
    parser.on('error', () => decide(true));
    parser.on('end', () => decide(true));
    input.on('error', () => decide(true));
    input.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

/** The first bytes of a file: gzip (1f 8b), zstd (28 b5 2f fd) or a plain tar. */
export function compressionOf(file: string): 'gzip' | 'zstd' | 'none' {
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(4);
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Whether `sandbox-run import` should read `file` as an image: a directory, or a tar that is not one of our layer archives. */
export async function isImage(file: string): Promise<boolean> {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) return false;
  return st.isDirectory() || !(await isLayerArchive(file));
}
