import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFiles } from './hash.js';
import { isOpaque } from './xattr.js';

export { fileHash, hashFiles } from './hash.js';
export { OPAQUE_XATTR } from './xattr.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'whiteout' | 'other';

/** One path of a tree, as the digest and the tar writer see it. */
export interface TreeEntry {
  /** '' for the root, else 'a/b' (no leading slash). */
  path: string;
  type: EntryType;
  stats: Stats;
  /** Symlink target. */
  target?: string;
  /** Directory with `user.overlay.opaque=y`. */
  opaque?: boolean;
}

/** A 0/0 character device: how overlayfs records a deletion. */
export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function typeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (isWhiteout(st)) return 'whiteout';
  return 'other';
}

/** Directories under `root` marked opaque, found in one pass over its directories. */
export async function opaqueDirs(root: string): Promise<Set<string>> {
  const found = new Set<string>();
  const visit = async (path: string): Promise<void> => {
    const full = path ? join(root, path) : root;
    if (await isOpaque(full)) found.add(path);
    for (const entry of await readdir(full, { withFileTypes: true })) if (entry.isDirectory()) await visit(path ? `${path}/${entry.name}` : entry.name);
  };
  await visit('');
  return found;
}

/**
 * Every entry of a tree, depth first, names sorted by bytes: the canonical
 * order. `xattrs: false` skips reading opaque markers (for trees that cannot
 * have them, such as a snapshot's fresh copy).
 */
export async function walkTree(root: string, options: { xattrs?: boolean } = {}): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const visit = async (path: string): Promise<void> => {
    const full = path ? join(root, path) : root;
    const stats = await lstat(full);
    const type = typeOf(stats);
    const entry: TreeEntry = { path, type, stats };
    if (type === 'symlink') entry.target = await readlink(full);
    if (type === 'dir' && options.xattrs !== false && (await isOpaque(full))) entry.opaque = true;
    entries.push(entry);
    if (type !== 'dir') return;
    const names = (await readdir(full)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) await visit(path ? `${path}/${name}` : name);
  };
  await visit('');
  return entries;
}

/**
 * The layer digest: sha256 over one line per entry in canonical order,
 * `path \0 type \0 mode \0 detail \n`, where detail is the content hash and
 * size of a file, the target of a symlink, "opaque" for an opaque dir.
 * Owners and times are left out: the same content gives the same digest
 * whoever made it and whenever. A child's digest starts with its parent's.
 */
export async function treeDigest(
  root: string,
  entries?: TreeEntry[],
  options: { xattrs?: boolean; hashes?: ReadonlyMap<string, string>; parent?: string } = {},
): Promise<{ digest: string; size: number; entries: TreeEntry[] }> {
  const all = entries ?? (await walkTree(root, options));
  // `hashes`: content hashes known already (computed while the tree was written).
  const known = options.hashes ?? new Map<string, string>();
  const hashes = await hashFiles(
    root,
    all.filter((entry) => entry.type === 'file' && !known.has(entry.path)).map((entry) => entry.path),
  );
  for (const [path, hex] of known) hashes.set(path, hex);
  const hash = createHash('sha256');
  // A child layer means "these changes on top of that parent": two builds
  // that write the same files on different parents are different layers.
  if (options.parent) hash.update(`parent\0${options.parent}\n`);
  const seen = new Set<string>();
  let size = 0;
  for (const entry of all) {
    // A whiteout's mode depends on who made it (kernel: 0, mknod: umask); it means nothing.
    const mode = entry.type === 'whiteout' ? '0' : (entry.stats.mode & 0o7777).toString(8);
    let detail = '';
    if (entry.type === 'file') detail = `${hashes.get(entry.path)} ${entry.stats.size}`;
    else if (entry.type === 'symlink') detail = entry.target!;
    else if (entry.opaque) detail = 'opaque';
    hash.update(`${entry.path}\0${entry.type}\0${mode}\0${detail}\n`);
    const inode = `${entry.stats.dev}:${entry.stats.ino}`;
    if (!seen.has(inode)) size += entry.stats.blocks * 512;
    seen.add(inode);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, entries: all };
}
