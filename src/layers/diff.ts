import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isWhiteout, opaqueDirs } from './tree.js';

/** One line of `docker diff`: A added, C changed, D deleted. */
export interface DiffEntry {
  kind: 'A' | 'C' | 'D';
  /** Absolute inside the mount, e.g. `/base/pg_control`. */
  path: string;
}

/**
 * What a writable layer did to its lower dirs (top first): a whiteout is a
 * deletion, a path found in no lower is an addition, anything else a change.
 * Without lowers everything in the upper counts as added. An opaque dir also
 * deletes what the lowers had under it.
 */
export async function diffTree(upperDir: string, lowerDirs: readonly string[] = []): Promise<DiffEntry[]> {
  const opaque = await opaqueDirs(upperDir);
  const out: DiffEntry[] = [];
  // Top lower first: a whiteout there means a deeper layer's copy is hidden.
  // An opaque directory there hides everything deeper below it.
  const lowerOpaque = await Promise.all(lowerDirs.map((lower) => opaqueDirs(lower)));
  const inLower = async (rel: string) => {
    const ancestors = rel
      .split('/')
      .slice(0, -1)
      .map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    for (const [i, lower] of lowerDirs.entries()) {
      const st = await lstat(join(lower, rel)).catch(() => undefined);
      if (st) return !isWhiteout(st);
      if (ancestors.some((dir) => lowerOpaque[i]!.has(dir))) return false;
    }
    return false;
  };
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(upperDir, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(upperDir, path));
      if (isWhiteout(st)) {
        out.push({ kind: 'D', path: `/${path}` });
        continue;
      }
      const existed = await inLower(path);
      out.push({ kind: existed ? 'C' : 'A', path: `/${path}` });
      if (!st.isDirectory()) continue;
      if (existed && opaque.has(path)) {
        const kept = new Set(await readdir(join(upperDir, path)));
        const hidden = new Set<string>();
        for (const lower of lowerDirs)
          for (const child of await readdir(join(lower, path)).catch(() => [] as string[])) if (!kept.has(child)) hidden.add(child);
        for (const child of [...hidden].sort()) out.push({ kind: 'D', path: `/${path}/${child}` });
      }
      await visit(path);
    }
  };
  await visit('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
