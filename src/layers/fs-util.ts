import { accessSync, closeSync, constants, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes a file whole or not at all: write aside, then rename. */
export function writeFileAtomic(path: string, data: string): void {
  const aside = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(aside, data);
    renameSync(aside, path);
  } catch (error) {
    rmSync(aside, { force: true }); // e.g. half written on a full disk
    throw error;
  }
}

/** fsync of a directory (makes a rename or create in it durable). Best effort. */
export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems refuse fsync on directories
  }
}

/** Files and dirs fsynced at once. */
const SYNC_CONCURRENCY = 8;

/**
 * fsyncs every regular file and directory of a tree (only this tree's data,
 * unlike syncfs, which would also wait for every other writer on the disk).
 */
export async function syncTree(root: string): Promise<void> {
  const paths: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    paths.push(dir);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile()) paths.push(path);
    }
  };
  await visit(root);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++]!;
      const handle = await open(path, 'r').catch(() => undefined);
      if (!handle) continue;
      await handle.sync().catch(() => undefined);
      await handle.close();
    }
  };
  await Promise.all(Array.from({ length: SYNC_CONCURRENCY }, worker));
}

/** Whether we may create files in `dir` (false on a read-only mount, or a store owned by someone else). */
export function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
