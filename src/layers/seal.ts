import { createHash } from 'node:crypto';
import { type BigIntStats, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { writeFileAtomic } from './fs-util.js';

/**
 * A layer's seal, `layers/<hex>/seal`: what every entry of its tree looked
 * like to lstat at commit (path, type, mode, size, mtime and ctime in ns)
 * and a hash of its meta.json. Recomputing it needs no file contents, so
 * it is cheap enough to check whenever a layer is about to be mounted.
 * Any write, chmod, chown, rename, link or unlink changes the ctime, which
 * no one can set back (short of changing the clock), so a tree changed after commit never matches.
 * It catches accidents, not an attacker who can write the store (they can
 * rewrite the seal too); `sandbox-run verify` re-digests the contents.
 */
export const SEAL_FILE = 'seal';
const SEAL_VERSION = 1;

/**
 * One entry: [path ('' is the tree's root), type, mode, size, mtime ns, ctime ns].
 * Not the owner: inside a sandbox's user namespace ids read differently,
 * and a chown changes the ctime anyway.
 */
type SealEntry = [string, string, number, string, string, string];

interface SealFile {
  version: number;
  /** sha256 of meta.json as committed. */
  meta: string;
  entries: SealEntry[];
}

function kind(st: BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** lstat of every entry, depth first, names sorted by bytes (synchronous: a few ms for thousands of entries, and no interleaving). */
function sealEntries(tree: string): SealEntry[] {
  const entries: SealEntry[] = [];
  const visit = (path: string): void => {
    const st = lstatSync(path ? join(tree, path) : tree, { bigint: true });
    const type = kind(st);
    entries.push([path, type, Number(st.mode & 0o7777n), String(st.size), String(st.mtimeNs), String(st.ctimeNs)]);
    if (type !== 'dir') return;
    const names = readdirSync(path ? join(tree, path) : tree).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) visit(path ? `${path}/${name}` : name);
  };
  visit('');
  return entries;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes the seal of the layer in `layerDir` as it is now (whole or not at
 * all; a commit fsyncs it with the tree). File times come from a coarse
 * clock (a tick of 1-10 ms): a change within the tick of the last one
 * sealed would keep the same ctime. So the seal is written again until its
 * own ctime is past every entry's: any later change then has a newer one.
 */
export async function writeSeal(layerDir: string): Promise<void> {
  const seal: SealFile = { version: SEAL_VERSION, meta: sha256(readFileSync(join(layerDir, 'meta.json'))), entries: sealEntries(join(layerDir, 'tree')) };
  const newest = seal.entries.reduce((max, entry) => (BigInt(entry[5]) > max ? BigInt(entry[5]) : max), 0n);
  const file = join(layerDir, SEAL_FILE);
  for (;;) {
    writeFileAtomic(file, `${JSON.stringify(seal)}\n`);
    if (lstatSync(file, { bigint: true }).ctimeNs > newest) return;
    await delay(1); // waiting for the clock's next tick, not for another process
  }
}

/** The seal as recorded, or 'missing' (a layer committed before seals existed), or 'unreadable'. */
function readSeal(layerDir: string): SealFile | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(join(layerDir, SEAL_FILE), 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const seal = JSON.parse(text) as SealFile;
    return seal.version === SEAL_VERSION && typeof seal.meta === 'string' && Array.isArray(seal.entries) ? seal : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/**
 * Compares a layer with its seal: undefined if it matches, 'missing' if it
 * has none, else what differs first ("tree/a/b changed after commit").
 */
export function checkSeal(layerDir: string): string | undefined {
  const seal = readSeal(layerDir);
  if (seal === 'missing') return 'missing';
  if (seal === 'unreadable') return 'its seal file is unreadable';
  if (sha256(readFileSync(join(layerDir, 'meta.json'))) !== seal.meta) return 'meta.json changed after commit';
  let current: SealEntry[];
  try {
    current = sealEntries(join(layerDir, 'tree'));
  } catch (error) {
    return `tree/ cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  const label = (path: string) => (path ? `tree/${path}` : 'tree/');
  const then = new Map(seal.entries.map((entry) => [entry[0], entry]));
  // Adding or removing a file also changes its directory: name the file, not the directory.
  let changedFile: string | undefined;
  let changedDir: string | undefined;
  for (const entry of current) {
    const was = then.get(entry[0]);
    if (!was) return `${label(entry[0])} was added after commit`;
    then.delete(entry[0]);
    if (!was.some((field, i) => field !== entry[i])) continue;
    if (entry[1] === 'dir' && was[1] === 'dir') changedDir ??= entry[0];
    else changedFile ??= entry[0];
  }
  const [removed] = then.keys();
  if (removed !== undefined) return `${label(removed)} was removed after commit`;
  const changed = changedFile ?? changedDir;
  return changed === undefined ? undefined : `${label(changed)} changed after commit`;
}
