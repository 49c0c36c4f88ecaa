import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SandboxError } from '../errors.js';
import { ownedName } from '../process/sweep.js';
import { checkedBefore, corruptLayerError, readMeta, rememberChecked } from './integrity.js';
import type { ImageConfig } from './oci-index.js';
import { checkSeal } from './seal.js';
import { defaultStoreDir } from './store.js';

/*
 * An image's layer stack, read synchronously from a store directory: the
 * sandbox's launch path (spawn, the runner's jobs) plans without awaiting.
 * The same checks as LayerStore.lowerDirs (meta.json, tree/, the seal), once
 * per process per layer while it stays as it is; a stale seal, which
 * lowerDirs would settle with a full re-digest, is reported with the command
 * that does it (`sandbox-run verify`).
 */

/** An image as the store holds it. */
export interface ImageStack {
  /** The reference as asked. */
  ref: string;
  /** The top layer's digest. */
  digest: string;
  /** Host directories, top first. */
  lowers: string[];
  /** The image config kept with the top layer (none for a layer that is not an image's). */
  config?: ImageConfig;
}

const HEX = /^[0-9a-f]{64}$/;

function missing(ref: string, storeDir: string): never {
  throw new SandboxError(
    'BAD_OPTIONS',
    `no image '${ref}' in the layer store ${storeDir}: run \`sandbox-run pull ${ref}\` or \`sandbox-run import FILE\` first (see sandbox-run layers)`,
  );
}

function tagged(storeDir: string, ref: string): string | undefined {
  let tags: Record<string, string> = {};
  try {
    tags = JSON.parse(readFileSync(join(storeDir, 'tags.json'), 'utf8')) as Record<string, string>;
  } catch {
    // no store yet, or no tags: nothing is tagged
  }
  const digest = Object.hasOwn(tags, ref) ? tags[ref] : undefined;
  if (digest) return digest.slice('sha256:'.length);
  const hex = ref.replace(/^sha256:/, '');
  if (HEX.test(hex)) return existsSync(join(storeDir, 'layers', hex)) ? hex : undefined;
  if (/^[0-9a-f]{12,63}$/.test(hex) && existsSync(join(storeDir, 'layers'))) {
    const matches = readdirSync(join(storeDir, 'layers')).filter((name) => name.startsWith(hex));
    if (matches.length === 1) return matches[0];
  }
  return undefined;
}

function checkLayer(layerDir: string, hex: string, label: string, ref: string): ReturnType<typeof readMeta> & object {
  const meta = readMeta(layerDir, hex);
  if (typeof meta === 'string') throw corruptLayerError(label, meta, ref);
  if (!lstatSync(join(layerDir, 'tree'), { throwIfNoEntry: false })?.isDirectory()) throw corruptLayerError(label, 'tree/ is missing', ref);
  if (!checkedBefore(layerDir)) {
    const seal = checkSeal(layerDir);
    // 'missing': a layer committed before seals existed, as LayerStore.list takes it.
    if (seal !== undefined && seal !== 'missing') throw corruptLayerError(label, seal, ref);
    rememberChecked(layerDir);
  }
  return meta;
}

const held = new Set<string>();

/**
 * Leases the image's top layer for this process's life, as the store's own
 * lease does (a pid file under leases/, swept once the process is gone), so
 * `sandbox-run remove` cannot delete an image while sandboxes use it; its
 * lower layers are held by having a child. Written without the store's lock:
 * a remove that ran first is seen by the check after the write.
 */
function holdForProcess(dir: string, hex: string, ref: string): void {
  const key = `${dir}\0${hex}`;
  if (held.has(key)) return;
  try {
    writeFileSync(join(dir, 'leases', `${hex}.${ownedName()}`), '');
  } catch {
    return; // a read-only store (another user's): nothing of ours can remove it
  }
  if (!existsSync(join(dir, 'layers', hex))) missing(ref, dir);
  held.add(key);
}

/** The layers of image `ref` (a tag or digest) in the store at `storeDir`, top first. Missing: one line naming pull and import. */
export function imageStack(ref: string, storeDir: string = defaultStoreDir()): ImageStack {
  const dir = resolve(storeDir);
  const top = tagged(dir, ref) ?? missing(ref, dir);
  holdForProcess(dir, top, ref);
  const lowers: string[] = [];
  let config: ImageConfig | undefined;
  for (let hex: string | undefined = top; hex; ) {
    const layerDir = join(dir, 'layers', hex);
    if (!existsSync(layerDir)) throw corruptLayerError(`sha256:${hex.slice(0, 12)}`, `its directory layers/${hex} is missing`, ref);
    const meta = checkLayer(layerDir, hex, hex === top ? ref : `sha256:${hex.slice(0, 12)}`, ref);
    if (hex === top) config = meta.image;
    lowers.push(join(layerDir, 'tree'));
    if (lowers.length > 128) throw new SandboxError('SETUP_FAILED', `image ${ref}: parent chain too long or cyclic`);
    hex = meta.parent?.slice('sha256:'.length);
  }
  return { ref, digest: `sha256:${top}`, lowers, ...(config ? { config } : {}) };
}
