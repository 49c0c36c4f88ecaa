import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough, pipeline, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { removeTree } from '../process/sweep.js';
import { restoreWhiteouts, unsafe } from './archive.js';
import { compressionOf, type LayerBlob, layoutName, planImage, unpackImageArchive } from './image-source.js';
import { hostPlatform, type ImageConfig, ImageRefused, parsePlatform, storeName } from './oci-index.js';
import { checkName, type LayerStore, type Staging } from './store.js';
import { ArchiveRefused, extractChecked } from './tar-reader.js';
import { treeDigest } from './tree.js';
import type { LayerInfo } from './types.js';

export interface ImageImportOptions {
  /** OS/ARCH[/VARIANT] to take from a multi-platform index (default: the host's). */
  platform?: string;
  /** Which image of a layout or archive holding several (a ref.name annotation or a RepoTag). */
  ref?: string;
  /** The store name of the top layer (default: from the image reference, see {@link storeName}). */
  name?: string;
}

/** What {@link importImage} did. */
export interface ImageImport {
  /** The image's layers as store layers, top first. */
  layers: LayerInfo[];
  /** The tag set on the top layer. */
  name: string;
  /** Files whose setuid/setgid bits were dropped. */
  setuidDropped: number;
}

/** Where an image layer is extracted: as archive.ts's own layout, so its entry rules apply unchanged. */
const HEX = '0'.repeat(64);
const TREE = `${HEX}/tree`;

function rejectAs(file: string, why: string, verb: 'import' | 'pull' = 'import'): never {
  const line = `refusing to ${verb} ${file}: ${why}`.replace(/[\u0000-\u001f\u007f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
  throw new SandboxError('BAD_OPTIONS', line);
}

function reject(file: string, why: string): never {
  rejectAs(file, why);
}

/** A pass-through that hashes and counts what flows by. */
function tap(): { stream: Transform; digest: () => string; size: () => number } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  let hex: string | undefined;
  const digest = () => {
    hex ??= hash.digest('hex'); // a Hash can be digested once
    return `sha256:${hex}`;
  };
  return { stream, digest, size: () => size };
}

/**
 * The entry check of an image layer: archive.ts's rules for our own
 * archives, on the entry as it would sit in one (`<hex>/tree/PATH`), with
 * two differences an image root needs: absolute symlinks are kept (they
 * mean the image's root; every Debian image has them, e.g. /etc/alternatives),
 * and setuid/setgid bits are dropped instead of refused (su, passwd, mount
 * carry them; nothing in a rootless sandbox honours them anyway).
 */
function imageEntryCheck(dropped: { count: number }) {
  const strip = (path: string) => path.replace(/^(?:\.\/)+/, '').replace(/^\.$/, '');
  const unprefix = (why: string) => why.split(`${TREE}/`).join('').split(TREE).join('.');
  return (entry: ReadEntry): string | undefined => {
    if (entry.path.startsWith('/')) return `absolute path '${entry.path}'`;
    const rel = strip(entry.path);
    const path = rel ? `${TREE}/${rel}` : `${TREE}/`;
    let linkpath = entry.linkpath;
    if (entry.type === 'Link' && linkpath && !linkpath.startsWith('/')) linkpath = `${TREE}/${strip(linkpath)}`;
    if ((entry.mode ?? 0) & 0o6000 && entry.type !== 'Directory') {
      entry.mode = (entry.mode ?? 0) & ~0o6000;
      dropped.count++;
    }
    // setgid on directories (group inheritance) means nothing here either.
    if (entry.type === 'Directory') entry.mode = (entry.mode ?? 0o755) & ~0o6000;
    const absoluteLink = entry.type === 'SymbolicLink' && linkpath?.startsWith('/');
    const why = unsafe({ path, type: entry.type, mode: entry.mode, linkpath: absoluteLink ? '.' : linkpath } as ReadEntry);
    if (why) return unprefix(why);
    entry.path = path;
    if (entry.type === 'Link') entry.linkpath = linkpath!;
    return undefined;
  };
}

/** One layer of an image to extract: its blob is a file, or the promise of one (a pull extracts while later layers download). */
export interface ImageLayer extends Omit<LayerBlob, 'file'> {
  file: string | Promise<string>;
}

/** Extracts, checks and digests one layer blob into `dir`; verifies the blob digest and the diff_id. */
async function extractLayer(
  source: string,
  blob: LayerBlob,
  index: number,
  dir: string,
  parent: string | undefined,
  dropped: { count: number },
  verb: 'import' | 'pull',
) {
  const reject: (file: string, why: string) => never = (file, why) => rejectAs(file, why, verb);
  const kind = compressionOf(blob.file);
  const outer = tap();
  const inner = tap();
  const decompress = kind === 'gzip' ? createGunzip() : kind === 'zstd' ? (await import('./zstd.js')).createZstdDecompress() : new PassThrough();
  const stream = pipeline(createReadStream(blob.file, { highWaterMark: 1 << 20 }), outer.stream, decompress, inner.stream, () => undefined);
  const what = `layer ${index + 1} (${blob.digest ?? blob.diffId})`;
  const { hashes } = await extractChecked(stream, dir, imageEntryCheck(dropped)).catch((error: Error) =>
    reject(source, `${what}: ${error instanceof ArchiveRefused ? error.message : `cannot read it: ${error.message}`}`),
  );
  // The digests settle only once every byte went through: after the extraction, before anything is kept.
  if (blob.digest && outer.digest() !== blob.digest) reject(source, `digest mismatch: ${what} should be ${blob.digest}, its content is ${outer.digest()}`);
  if (blob.size !== undefined && outer.size() !== blob.size) reject(source, `size mismatch: ${what} should be ${blob.size} bytes, it is ${outer.size()}`);
  if (inner.digest() !== blob.diffId)
    reject(source, `diff_id mismatch: the config says layer ${index + 1} is ${blob.diffId}, its uncompressed content is ${inner.digest()}`);
  const tree = join(dir, TREE);
  // A layer tar with no entries (an empty layer) is an empty tree.
  if (!existsSync(tree)) mkdirSync(tree, { recursive: true, mode: 0o755 });
  await restoreWhiteouts(tree, source);
  const known = new Map<string, string>();
  for (const [path, sum] of hashes) if (path.startsWith(`${TREE}/`)) known.set(path.slice(TREE.length + 1), sum);
  const { digest, size } = await treeDigest(tree, undefined, { hashes: known, ...(parent ? { parent } : {}) });
  return { digest, size, part: { dir: join(dir, HEX), tree, discard: () => removeTree(join(dir, HEX)) } satisfies Staging };
}

/**
 * Imports an OCI image layout (directory or tar) or a `docker save` archive:
 * the image for the platform asked (default: the host's), every blob, the
 * manifest and the config checked against their digests and each layer's
 * tar against its diff_id. Each image layer becomes a store layer on the
 * one below; the top one is tagged and keeps the image config. Everything
 * is extracted and checked in the store's tmp/ before the first commit.
 */
export async function importImage(store: LayerStore, file: string, options: ImageImportOptions = {}): Promise<ImageImport> {
  const source = resolve(file);
  if (!existsSync(source)) throw new SandboxError('BAD_OPTIONS', `no such file or directory: ${file}`);
  const want = options.platform
    ? (() => {
        try {
          return parsePlatform(options.platform!);
        } catch (error) {
          throw new SandboxError('BAD_OPTIONS', (error as Error).message);
        }
      })()
    : hostPlatform();
  if (options.name) checkName(options.name);
  const staging = store.stage();
  try {
    let root = source;
    if (!statSync(source).isDirectory()) {
      root = join(staging.dir, 'image');
      mkdirSync(root);
      await unpackImageArchive(source, root).catch((error: Error) => reject(source, error.message));
    }
    let plan;
    try {
      plan = planImage(root, { ...(options.ref ? { ref: options.ref } : {}), platform: want, asked: !!options.platform });
    } catch (error) {
      if (error instanceof ImageRefused) reject(source, error.message);
      throw error;
    }
    const reference = plan.reference;
    const name = options.name ?? (reference ? (plan.ownExport ? reference : storeName(reference, layoutName(source))) : undefined);
    if (!name) reject(source, 'the image has no name (no ref.name annotation or RepoTags): give --name');
    try {
      checkName(name);
    } catch {
      reject(source, `the image name '${name}' is not a valid layer name: give --name`);
    }

    return await commitImage(store, staging, { source, layers: plan.layers, image: { reference: reference ?? name, ...plan.image }, name });
  } finally {
    staging.discard();
  }
}

/** An image to extract and commit: {@link commitImage}'s input, from a file (import) or a registry (pull). */
export interface ImageLayers {
  /** The image as errors and the layers' `source.file` name it: a path, or a registry reference. */
  source: string;
  /** Bottom first. */
  layers: ImageLayer[];
  /** Store layers that hold the bottom layers already (see {@link presentLayers}): not extracted again. */
  present?: LayerInfo[];
  image: ImageConfig;
  /** The tag of the top layer. */
  name: string;
  verb?: 'import' | 'pull';
  /** Called as each layer is extracted and checked (i: its index, bottom first). */
  onExtracted?: (index: number) => void;
}

/**
 * The shared end of import and pull: every layer above `present` is
 * extracted into `staging` with the image entry rules, its blob digest,
 * size and diff_id checked, and only when all of them passed are they
 * committed, bottom first, the top one tagged `name` and keeping the
 * image config. A refusal leaves nothing in the store.
 */
export async function commitImage(store: LayerStore, staging: Staging, spec: ImageLayers): Promise<ImageImport> {
  const verb = spec.verb ?? 'import';
  const present = spec.present ?? [];
  if (!spec.layers.length) rejectAs(spec.source, 'the image has no layers', verb);
  const dropped = { count: 0 };
  const parts: { digest: string; size: number; part: Staging; blob: ImageLayer }[] = [];
  let parent = present.at(-1)?.digest;
  for (let i = present.length; i < spec.layers.length; i++) {
    const layer = spec.layers[i]!;
    const dir = join(staging.dir, `layer-${i}`);
    mkdirSync(dir);
    const blob: LayerBlob = { ...layer, file: await layer.file };
    const done = await extractLayer(spec.source, blob, i, dir, parent, dropped, verb);
    parts.push({ ...done, blob: layer });
    parent = done.digest;
    spec.onExtracted?.(i);
  }
  const committed: LayerInfo[] = [...present];
  for (const [i, { digest, size, part, blob }] of parts.entries()) {
    const top = i === parts.length - 1;
    const below = committed.at(-1)?.digest;
    const info = await store
      .commit(
        part,
        {
          ...(below ? { parent: below } : {}),
          source: { kind: 'image', file: spec.source, diffId: blob.diffId },
          ...(top ? { image: spec.image } : {}),
        },
        top ? spec.name : undefined,
        { digested: { digest, size } },
      )
      .catch((error: Error) => rejectAs(spec.source, error.message, verb));
    committed.push(info);
  }
  // Every layer was in the store already: only the tag is new.
  if (!parts.length) {
    await store.tag(spec.name, committed.at(-1)!.digest);
    committed[committed.length - 1] = (await store.get(spec.name))!;
  }
  return { layers: committed.reverse(), name: spec.name, setuidDropped: dropped.count };
}

/**
 * The store layers that already hold an image's bottom layers: the longest
 * chain from the bottom whose layers came from an image layer with the same
 * diff_id on the same parent (their content was checked against it at commit).
 */
export async function presentLayers(store: LayerStore, diffIds: readonly string[]): Promise<LayerInfo[]> {
  const layers = (await store.list()).filter((info) => !info.corrupt && info.source.kind === 'image');
  const found: LayerInfo[] = [];
  for (const diffId of diffIds) {
    const parent = found.at(-1)?.digest;
    const hit = layers.find((info) => info.source.kind === 'image' && info.source.diffId === diffId && info.parent === parent);
    if (!hit) break;
    found.push(hit);
  }
  return found;
}
