import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { writable } from './fs-util.js';
import { checkSeal, SEAL_FILE, writeSeal } from './seal.js';
import type { LayerMeta } from './store.js';
import { treeDigest } from './tree.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** A layer's meta.json if it is sound and names its own directory, else what is wrong with it. */
export function readMeta(layerDir: string, hex: string): LayerMeta | string {
  let text: string;
  try {
    text = readFileSync(join(layerDir, 'meta.json'), 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'meta.json is missing' : `meta.json is unreadable (${(error as NodeJS.ErrnoException).code})`;
  }
  let meta: Partial<LayerMeta>;
  try {
    meta = JSON.parse(text) as Partial<LayerMeta>;
  } catch {
    return 'meta.json is not valid JSON';
  }
  if (!meta || typeof meta !== 'object' || typeof meta.digest !== 'string' || !DIGEST.test(meta.digest)) return 'meta.json has no valid digest';
  if (meta.digest !== `sha256:${hex}`) return `meta.json says ${meta.digest}, not the digest its directory is named after`;
  if (meta.parent !== undefined && (typeof meta.parent !== 'string' || !DIGEST.test(meta.parent))) return 'meta.json has an invalid parent';
  if (typeof meta.size !== 'number' || typeof meta.created !== 'string' || !meta.source || typeof meta.source !== 'object')
    return 'meta.json lacks size, created or source';
  return meta as LayerMeta;
}

/** What is wrong with `layers/<hex>/tree`, if anything. */
function treeProblem(layerDir: string): string | undefined {
  try {
    return lstatSync(join(layerDir, 'tree')).isDirectory() ? undefined : 'tree is not a directory';
  } catch {
    return 'tree/ is missing';
  }
}

/** Identity of a layer's meta.json, seal and tree root: any rewrite of them changes it. */
function identity(layerDir: string): string {
  return ['meta.json', SEAL_FILE, 'tree']
    .map((name) => {
      try {
        const st = lstatSync(join(layerDir, name), { bigint: true });
        return `${st.ino}:${st.ctimeNs}`;
      } catch {
        return '-';
      }
    })
    .join('/');
}

/** Layers that passed the check in this process, by directory: identity then. A pool checks each layer once. */
const checked = new Map<string, string>();

/** Whether the layer passed a check in this process and has not been rewritten since. */
export function checkedBefore(layerDir: string): boolean {
  return checked.get(layerDir) === identity(layerDir);
}

/** Remembers that the layer passed a check, as it is now. */
export function rememberChecked(layerDir: string): void {
  checked.set(layerDir, identity(layerDir));
}

/** Result of a full verification. */
export interface Verdict {
  status: 'ok' | 'resealed' | 'corrupt';
  /** What is wrong (corrupt), or why the seal was renewed (resealed). */
  reason?: string;
}

/**
 * Re-digests the whole tree and compares it with the recorded digest; a
 * layer whose content is right but whose seal does not match (its files'
 * times or owners changed, as in a copy with `cp -a` or a restore from
 * backup) is sealed again when the store is writable.
 */
export async function verifyLayer(layerDir: string, hex: string): Promise<Verdict> {
  const meta = readMeta(layerDir, hex);
  if (typeof meta === 'string') return { status: 'corrupt', reason: meta };
  const problem = treeProblem(layerDir);
  if (problem) return { status: 'corrupt', reason: problem };
  const seal = checkSeal(layerDir);
  const { digest } = await treeDigest(join(layerDir, 'tree'), undefined, meta.parent ? { parent: meta.parent } : {});
  if (digest !== meta.digest) {
    // The seal usually knows which path changed; the digest only that something did.
    const where = seal && seal !== 'missing' && !seal.startsWith('its seal') ? `${seal}: ` : '';
    return { status: 'corrupt', reason: `${where}its content digest is now ${digest}` };
  }
  if (seal === undefined) return { status: 'ok' };
  if (!writable(layerDir)) return { status: 'ok', reason: 'not resealed: the store is read-only' };
  await writeSeal(layerDir);
  rememberChecked(layerDir);
  return { status: 'resealed', reason: seal === 'missing' ? 'it had no seal (committed before seals existed)' : `${seal}, but its content is intact` };
}

/**
 * The check made whenever a layer is about to be mounted: meta.json, tree/
 * and the seal (lstat of every entry, no contents read). A layer whose seal
 * is missing (committed before seals existed) or stale is verified in full,
 * then sealed (`unsealed: 'skip'`: no full verification, for listings).
 * Returns what is wrong, or undefined.
 */
export async function mountProblem(layerDir: string, hex: string, options: { unsealed?: 'verify' | 'skip' } = {}): Promise<string | undefined> {
  const meta = readMeta(layerDir, hex);
  if (typeof meta === 'string') return meta;
  const problem = treeProblem(layerDir);
  if (problem) return problem;
  if (checkedBefore(layerDir)) return undefined;
  const seal = checkSeal(layerDir);
  if (seal !== undefined) {
    // meta.json is not covered by the digest: an edit of it stays an error.
    if (seal === 'meta.json changed after commit') return seal;
    if (options.unsealed === 'skip') return seal === 'missing' ? undefined : seal;
    // A stale seal is what a copy, rsync or CI cache restore leaves (new
    // ctimes, same bytes): the full digest decides, and the layer is sealed
    // again when its content is intact, so restored stores just work.
    const verdict = await verifyLayer(layerDir, hex);
    // The seal names the path that changed; the digest only that something did.
    if (verdict.status === 'corrupt') return seal.startsWith('tree/') ? seal : verdict.reason;
  }
  rememberChecked(layerDir);
  return undefined;
}

/** The one-line error for a corrupt layer: which, what is wrong, what to do. */
export function corruptLayerError(label: string, reason: string, ref: string): SandboxError {
  return new SandboxError(
    'CORRUPT_LAYER',
    `layer ${label} is corrupt: ${reason}; run \`sandbox-run verify ${ref}\` or remove it with \`sandbox-run rm ${ref}\` and rebuild`,
  );
}
