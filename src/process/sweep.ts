import { chmodSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './alive.js';

/** `<pid>-<random>`: a name for a per-process leftover, so that a sweep can tell whose it is. */
export function ownedName(): string {
  return `${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** The pid a name made by {@link ownedName} (or `<pid>.<x>`) starts with; NaN for other names. */
export function ownerPid(name: string): number {
  return Number(/^(\d+)[-.]/.exec(name)?.[1] ?? NaN);
}

/**
 * Removes a tree the caller owns even where directories in it deny the
 * owner write or search: overlayfs leaves `work/work` at mode 000, tests
 * make directories read-only.
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    const openUp = (dir: string) => {
      try {
        chmodSync(dir, 0o700);
        for (const name of readdirSync(dir)) {
          const child = join(dir, name);
          if (lstatSync(child).isDirectory()) openUp(child);
        }
      } catch {
        // gone meanwhile, or not ours: rmSync below says so
      }
    };
    openUp(path);
    rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Removes the entries of `dir` that processes now gone left behind (a
 * SIGKILL gives no chance to clean up): `owner` reads the pid from an
 * entry's name, NaN or undefined for entries that are not leftovers. This
 * process's own entries and those of live processes stay. Returns the
 * paths handed to `remove`; a missing `dir` has none.
 */
export function sweepDeadOwners(dir: string, owner: (name: string) => number | undefined, remove: (path: string) => void = removeTree): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const swept: string[] = [];
  for (const name of names) {
    const pid = owner(name);
    if (pid === undefined || pid === process.pid || !Number.isInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    remove(join(dir, name));
    swept.push(join(dir, name));
  }
  return swept;
}
