import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { changedRelations, isPagesLayer, overlayFile } from '../presets/postgres/page-deltas.js';
import { isWhiteout, opaqueDirs } from './tree.js';

/** One line of `docker diff`: A added, C changed, D deleted. */
export interface DiffEntry {
  kind: 'A' | 'C' | 'D';
  /** Absolute inside the mount, e.g. `/base/pg_control`. */
  path: string;
  /**
   * A relation file the postgres preset's server wrote with copyUp 'pages': the 8 KiB blocks its delta holds. The
   * file under data/ is unchanged on disk; the writes are in the layer's `pages/` (a process with pg-page-cow.so
   * preloaded, or page-deltas.ts, merges them).
   */
  blocks?: number;
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
  if (await isPagesLayer(upperDir, lowerDirs)) return pagesAsFiles(out, upperDir, lowerDirs);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * copyUp 'pages' keeps a written relation file's blocks in `pages/<rel>` and `pages/<rel>.map`, not in the file: the
 * change is the relation file's (`C /data/base/5/16384`, with the blocks written), and `pages/` is the library's
 * bookkeeping, not part of what the database looks like. Its parent directories count as changed, as a copy-up's would.
 */
async function pagesAsFiles(entries: DiffEntry[], upperDir: string, lowerDirs: readonly string[]): Promise<DiffEntry[]> {
  const byPath = new Map(entries.filter((e) => e.path !== '/pages' && !e.path.startsWith('/pages/')).map((e) => [e.path, e]));
  for (const { rel, blocks } of await changedRelations(join(upperDir, 'pages'))) {
    // A map left for a file that no longer exists describes nothing a reader could open.
    if (!(await overlayFile([upperDir, ...lowerDirs], `data/${rel}`))) continue;
    const path = `/data/${rel}`;
    byPath.set(path, { ...(byPath.get(path) ?? { kind: 'C', path }), blocks });
    const parts = path.split('/');
    for (let i = 2; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { kind: 'C', path: dir });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
