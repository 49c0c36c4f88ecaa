import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, linkSync, lstatSync, mkdirSync, symlinkSync, type WriteStream } from 'node:fs';
import { chmod, lutimes, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';

/** What {@link extractChecked} restored. */
export interface Extracted {
  /** sha256 (hex) of every regular file's content by archive path (hard links included), computed while writing. */
  hashes: Map<string, string>;
}

interface Made {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink';
  mode: number;
  mtime?: Date | undefined;
}

/** A one-line refusal of the archive (the caller words it). */
export class ArchiveRefused extends Error {}

/**
 * Extracts a tar (a file, gzip detected by content, or a stream) into `dest`, which must be an
 * empty directory, for an untrusted archive: `check` vets every entry before
 * anything is written (and its first refusal ends the extraction); besides,
 * no entry may go through a symlink of the archive, appear twice, or hard-link
 * to anything but a regular file extracted before it. Files are written
 * owner-only and get their modes and times last, deepest first (so
 * read-only directories and directory times come out right). Each file's
 * sha256 is computed as it streams by, so the layer digest need not read the
 * tree again.
 */
export async function extractChecked(file: string | NodeJS.ReadableStream, dest: string, check: (entry: ReadEntry) => string | undefined): Promise<Extracted> {
  const hashes = new Map<string, string>();
  const made: Made[] = [];
  const symlinks = new Set<string>();
  const dirs = new Set<string>(['']);
  /** Where a directory's record is in `made` (its entry may come after its files). */
  const dirIndex = new Map<string, number>();
  /** Pending writes by path (a hard link waits for its target), each settled into `problem` on failure. */
  const writes = new Map<string, Promise<void>>();
  const pending: Promise<void>[] = [];
  /** Files being written. */
  const open = new Set<WriteStream>();
  let problem: string | undefined;
  const refuse = (why: string) => {
    problem ??= why;
  };
  const track = (path: string, write: Promise<void>) => {
    const settled = write.catch((error: NodeJS.ErrnoException) => {
      refuse(error.code === 'EEXIST' ? `'${path}' appears twice` : `cannot extract '${path}': ${error.message}`);
      throw error;
    });
    settled.catch(() => undefined);
    writes.set(path, settled);
    pending.push(settled.catch(() => undefined));
  };

  /** Makes the parent directories of `path`, refusing to pass through a symlink of the archive. */
  const parents = (path: string): boolean => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) {
        refuse(`'${path}' goes through the symlink '${prefix}'`);
        return false;
      }
      if (!dirs.has(prefix)) {
        mkdirSync(join(dest, prefix), { mode: 0o700 });
        dirs.add(prefix);
        dirIndex.set(prefix, made.push({ path: prefix, type: 'Directory', mode: 0o755 }) - 1);
      }
    }
    return true;
  };

  const onEntry = (entry: ReadEntry) => {
    if (problem) return entry.resume();
    const why = check(entry);
    if (why) {
      refuse(why);
      return entry.resume();
    }
    // './' (tar -C DIR .) is the destination itself.
    const path = posix.normalize(entry.path).replace(/\/+$/, '').replace(/^\.$/, '');
    try {
      if (!parents(path)) return entry.resume();
      const target = join(dest, path);
      const mode = (entry.mode ?? 0o644) & 0o7777;
      switch (entry.type) {
        case 'Directory': {
          if (dirs.has(path)) {
            // A directory entry after files in it: keep its mode and time.
            const index = dirIndex.get(path);
            if (index !== undefined) made[index] = { path, type: 'Directory', mode, mtime: entry.mtime };
          } else {
            mkdirSync(target, { mode: 0o700 });
            dirs.add(path);
            dirIndex.set(path, made.push({ path, type: 'Directory', mode, mtime: entry.mtime }) - 1);
          }
          return entry.resume();
        }
        case 'SymbolicLink': {
          symlinkSync(entry.linkpath!, target);
          symlinks.add(path);
          made.push({ path, type: 'SymbolicLink', mode, mtime: entry.mtime });
          return entry.resume();
        }
        case 'Link': {
          const from = posix.normalize(entry.linkpath!).replace(/\/+$/, '');
          const written = writes.get(from);
          if (!written) {
            refuse(`hard link '${entry.path}' points to '${entry.linkpath}', which is no file extracted before it`);
            return entry.resume();
          }
          track(
            path,
            written.then(() => {
              linkSync(join(dest, from), target);
              hashes.set(path, hashes.get(from)!);
            }),
          );
          return entry.resume();
        }
        default: {
          // File, OldFile, ContiguousFile (check() refused every other type).
          const hash = createHash('sha256');
          const out = createWriteStream(target, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
          open.add(out);
          out.on('close', () => open.delete(out));
          let failed = false;
          const done = new Promise<void>((resolve, reject) => {
            out.on('close', () => (failed ? undefined : resolve()));
            out.on('error', (error) => {
              // Drain the entry so the parser goes on to the next one.
              failed = true;
              entry.resume();
              reject(error);
            });
          });
          // One consumer for both the hash and the file (a second one could miss buffered chunks).
          entry.on('data', (chunk: Buffer) => {
            hash.update(chunk);
            if (!failed && !out.write(chunk)) entry.pause();
          });
          out.on('drain', () => entry.resume());
          entry.on('end', () => out.end());
          track(
            path,
            done.then(() => {
              hashes.set(path, hash.digest('hex'));
            }),
          );
          made.push({ path, type: 'File', mode, mtime: entry.mtime });
          return undefined;
        }
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      refuse(code === 'EEXIST' ? `'${entry.path}' appears twice` : `cannot extract '${entry.path}': ${(error as Error).message}`);
      return entry.resume();
    }
  };

  const parser = new Parser({ strict: true, onReadEntry: onEntry });
  try {
    await new Promise<void>((resolve, reject) => {
      parser.on('error', reject);
      parser.on('end', resolve);
      const input: NodeJS.ReadableStream = typeof file === 'string' ? createReadStream(file, { highWaterMark: 1 << 20 }) : file;
      input.on('error', reject);
      input.pipe(parser as unknown as NodeJS.WritableStream);
    });
  } catch (error) {
    refuse((error as Error).message.replace(/\s*\n[\s\S]*$/, ''));
    // A broken stream (truncated gzip, bad data) can leave an entry that never
    // ends: close its file so that nothing waits for it.
    for (const out of open) out.destroy(new Error('the archive ended in the middle of this file'));
  }
  await Promise.all(pending);
  if (problem) throw new ArchiveRefused(problem);

  // Modes and times last, deepest first.
  made.sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const entry of made) {
    const target = join(dest, entry.path);
    if (entry.type === 'SymbolicLink') {
      if (entry.mtime) await lutimes(target, entry.mtime, entry.mtime);
      continue;
    }
    await chmod(target, entry.mode);
    if (entry.mtime) await utimes(target, entry.mtime, entry.mtime);
  }
  // Guard: the destination holds only what the archive named.
  if (!lstatSync(dest).isDirectory()) throw new ArchiveRefused('the extraction directory went away');
  return { hashes };
}
