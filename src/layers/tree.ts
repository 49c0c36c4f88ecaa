import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SandboxError } from '../errors.js';

/** The overlayfs xattr (with `userxattr`) that makes a directory hide everything below it in lower layers. */
export const OPAQUE_XATTR = 'user.overlay.opaque';

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

/** getfattr escapes unusual bytes in names as \ooo. */
function unescapeOctal(text: string): string {
  return Buffer.from(text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))), 'latin1').toString('utf8');
}

/**
 * Directories under `root` marked opaque. Node has no xattr API, so this
 * asks getfattr (package `attr`) once per tree; where it is missing, this
 * throws a one-line error naming the package (silently losing opaque
 * directories would resurrect a parent's deleted files).
 */
export async function opaqueDirs(root: string): Promise<Set<string>> {
  const result = await execa('getfattr', ['-R', '-h', '-d', '-m', `^${OPAQUE_XATTR.replace(/\./g, '\\.')}$`, '--absolute-names', '--', root], {
    reject: false,
    encoding: 'latin1',
  });
  if ((result as { code?: string }).code === 'ENOENT')
    throw new SandboxError('SETUP_FAILED', 'getfattr is needed to read overlay opaque directories: install the attr package (apt-get install attr)');
  const found = new Set<string>();
  let file: string | undefined;
  for (const line of String(result.stdout).split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeOctal(line.slice(8));
    else if (file && line.startsWith(`${OPAQUE_XATTR}="y"`)) found.add(file === root ? '' : file.slice(root.length + 1));
  }
  return found;
}

/**
 * Every entry of a tree, depth first, names sorted by bytes: the canonical
 * order. `xattrs: false` skips reading opaque markers (for trees that cannot
 * have them, such as a snapshot's fresh copy).
 */
export async function walkTree(root: string, options: { xattrs?: boolean } = {}): Promise<TreeEntry[]> {
  const opaque = options.xattrs === false ? new Set<string>() : await opaqueDirs(root);
  const entries: TreeEntry[] = [];
  const visit = async (path: string): Promise<void> => {
    const full = path ? join(root, path) : root;
    const stats = await lstat(full);
    const type = typeOf(stats);
    const entry: TreeEntry = { path, type, stats };
    if (type === 'symlink') entry.target = await readlink(full);
    if (type === 'dir' && opaque.has(path)) entry.opaque = true;
    entries.push(entry);
    if (type !== 'dir') return;
    const names = (await readdir(full)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) await visit(path ? `${path}/${name}` : name);
  };
  await visit('');
  return entries;
}

/** sha256 of a file's content, streamed. */
export async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Files hashed at once in Node: reads overlap with hashing. */
const HASH_CONCURRENCY = 4;
/** Paths per `openssl dgst` process (argv length). */
const OPENSSL_BATCH = 400;

let opensslWorks: Promise<boolean> | undefined;

/**
 * Whether the openssl CLI can hash: it uses the CPU's SHA extensions, which
 * Node's bundled OpenSSL often does not (measured: 1.8 GB/s against 0.6 GB/s),
 * and a second process uses a second core.
 */
function haveOpenssl(): Promise<boolean> {
  opensslWorks ??= execa('openssl', ['dgst', '-sha256', '-r', '/dev/null'], { reject: false }).then(
    (result) => result.exitCode === 0 && /^e3b0c442/.test(String(result.stdout)),
    () => false,
  );
  return opensslWorks;
}

/** sha256 of many files under `root`: openssl processes on two cores when possible, else Node. */
export async function hashFiles(root: string, paths: readonly string[]): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  // openssl prints names as given; names it would escape stay with Node.
  const viaOpenssl = (await haveOpenssl()) ? paths.filter((path) => !/[\\\n\r]/.test(path)) : [];
  const rest = new Set(paths);
  const batches: string[][] = [];
  for (let i = 0; i < viaOpenssl.length; i += OPENSSL_BATCH) batches.push(viaOpenssl.slice(i, i + OPENSSL_BATCH));
  let nextBatch = 0;
  const opensslWorker = async () => {
    while (nextBatch < batches.length) {
      const batch = batches[nextBatch++]!;
      const result = await execa('openssl', ['dgst', '-sha256', '-r', ...batch.map((path) => `./${path}`)], { cwd: root, reject: false, maxBuffer: 64 << 20 });
      if (result.exitCode !== 0) continue; // Node hashes what is left
      for (const line of String(result.stdout).split('\n')) {
        const match = /^([0-9a-f]{64}) \*\.\/(.*)$/.exec(line);
        if (match && rest.delete(match[2]!)) hashes.set(match[2]!, match[1]!);
      }
    }
  };
  await Promise.all([opensslWorker(), opensslWorker()]);
  const left = [...rest];
  let next = 0;
  const nodeWorker = async () => {
    while (next < left.length) {
      const path = left[next++]!;
      hashes.set(path, await fileHash(join(root, path)));
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, nodeWorker));
  return hashes;
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
