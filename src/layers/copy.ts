import { constants } from 'node:fs';
import { access, chmod, copyFile, link, lstat, lutimes, mkdir, open, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { hashFiles } from './hash.js';
import { type TreeEntry, walkTree } from './tree.js';

/** Copies in flight at once (libuv's thread pool has four threads). */
const COPY_CONCURRENCY = 4;

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);

/** A file with fewer blocks than its size needs: it has holes. */
function isSparse(entry: TreeEntry): boolean {
  return entry.stats.blocks * 512 < entry.stats.size;
}

/**
 * Copies a sparse file keeping it sparse: chunks of zeros are skipped (left
 * as holes), the rest written at their offsets, the size set last. Node has
 * no SEEK_DATA, so the holes are found by content, which reads them once.
 */
async function copySparse(from: string, to: string, size: number): Promise<void> {
  const input = await open(from, 'r');
  const output = await open(to, 'w');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    for (let position = 0; position < size; ) {
      const { bytesRead } = await input.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      if (!chunk.equals(ZEROS.subarray(0, bytesRead))) await output.write(chunk, 0, bytesRead, position);
      position += bytesRead;
    }
    await output.truncate(size);
  } finally {
    await input.close();
    await output.close();
  }
}

/** What a snapshot cannot hold, with the reason: device nodes, sockets, fifos, unreadable paths. */
async function refusals(root: string, entries: TreeEntry[]): Promise<string[]> {
  const problems: string[] = [];
  for (const entry of entries) {
    const full = entry.path ? join(root, entry.path) : root;
    const st = entry.stats;
    if (entry.type === 'whiteout' || entry.type === 'other') {
      const kind = st.isSocket() ? 'socket' : st.isFIFO() ? 'fifo' : 'device node';
      problems.push(`${full} (${kind})`);
    } else if (entry.type !== 'symlink') {
      const need = entry.type === 'dir' ? constants.R_OK | constants.X_OK : constants.R_OK;
      await access(full, need).catch(() => problems.push(`${full} (not readable)`));
    }
  }
  return problems;
}

/**
 * Copies a directory tree: types, modes, symlinks, hard links and
 * modification times; the copy is owned by the caller. Reflinks (FICLONE)
 * when the filesystem can, tried once with FICLONE_FORCE; a plain copy
 * otherwise, keeping sparse files sparse. Refuses special files and unreadable paths, naming them all.
 */
export async function copyTree(source: string, dest: string): Promise<{ method: 'reflink' | 'copy'; entries: TreeEntry[]; hashes: Map<string, string> }> {
  const entries = await walkTree(source, { xattrs: false });
  const problems = await refusals(source, entries);
  if (problems.length)
    throw new SandboxError(
      'BAD_OPTIONS',
      `cannot snapshot ${source}: ${problems.length} path(s) cannot be copied: ${problems.slice(0, 10).join(', ')}${problems.length > 10 ? ', ...' : ''}`,
    );

  // Directories and symlinks first (walk order puts parents first), files in parallel after.
  const files: TreeEntry[] = [];
  for (const entry of entries) {
    const to = join(dest, entry.path);
    if (entry.type === 'dir') await mkdir(to, { recursive: entry.path === '' });
    else if (entry.type === 'symlink') await symlink(entry.target!, to);
    else files.push(entry);
  }

  let method: 'reflink' | 'copy' | undefined;
  const firstCopy = new Map<string, string>();
  const links: [string, string][] = [];
  const unique = files.filter((entry) => {
    if (entry.stats.nlink < 2) return true;
    const inode = `${entry.stats.dev}:${entry.stats.ino}`;
    const first = firstCopy.get(inode);
    if (first === undefined) firstCopy.set(inode, entry.path);
    else links.push([first, entry.path]);
    return first === undefined;
  });
  const copyOne = async (entry: TreeEntry) => {
    const from = join(source, entry.path);
    const to = join(dest, entry.path);
    if (method !== 'reflink' && isSparse(entry)) {
      await copySparse(from, to, entry.stats.size);
      return;
    }
    if (method === undefined) {
      try {
        await copyFile(from, to, constants.COPYFILE_FICLONE_FORCE);
        method = 'reflink';
        return;
      } catch {
        method = 'copy';
      }
    }
    await copyFile(from, to, constants.COPYFILE_FICLONE);
  };
  // The source is hashed on worker threads (other cores) while the copy
  // runs in libuv's pool; a file that changes meanwhile is
  // caught below by its ctime, so the digest always describes the copy.
  const hashing = hashFiles(
    source,
    unique.map((entry) => entry.path),
  );
  // On the first failure (e.g. a full disk) every copy in flight is let
  // finish and no new one starts, so the caller's cleanup has nothing racing it.
  let failure: { error: unknown } | undefined;
  let next = 0;
  const copyNext = async () => {
    const entry = unique[next++]!;
    try {
      await copyOne(entry);
    } catch (error) {
      failure ??= { error };
    }
  };
  if (unique.length) await copyNext(); // decides reflink or copy once
  const worker = async () => {
    while (next < unique.length && !failure) await copyNext();
  };
  await Promise.all(Array.from({ length: COPY_CONCURRENCY }, worker));
  if (failure) {
    await hashing.catch(() => undefined);
    throw failure.error;
  }
  const hashes = await hashing;
  for (const [first, other] of links) {
    await link(join(dest, first), join(dest, other));
    hashes.set(other, hashes.get(first)!);
  }
  const changed: string[] = [];
  for (const entry of unique) {
    const now = await lstat(join(source, entry.path));
    if (now.size !== entry.stats.size || now.mtimeMs !== entry.stats.mtimeMs || now.ctimeMs !== entry.stats.ctimeMs) changed.push(entry.path);
  }
  if (changed.length)
    throw new SandboxError(
      'BAD_OPTIONS',
      `cannot snapshot ${source}: it changed while being copied (${changed.slice(0, 5).join(', ')}); stop its writers first`,
    );

  // Modes (copyFile and mkdir obey the umask) and times, deepest first so
  // that setting a directory's time is not undone by writing into it.
  for (const entry of [...entries].reverse()) {
    const to = join(dest, entry.path);
    const { atime, mtime } = entry.stats;
    if (entry.type === 'symlink') await lutimes(to, atime, mtime);
    else {
      await chmod(to, entry.stats.mode & 0o7777);
      await utimes(to, atime, mtime);
    }
  }
  return { method: method ?? 'copy', entries, hashes };
}
