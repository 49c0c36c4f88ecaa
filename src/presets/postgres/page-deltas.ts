import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SandboxError } from '../../errors.js';
import { isOpaque } from '../../layers/xattr.js';

/*
 * What copyUp 'pages' (helper/pg-page-cow.c) leaves in a sandbox's writable
 * layer, read from outside: the server never writes a seeded relation file,
 * it writes `pages/<rel>` (a sparse delta holding the written 8 KiB blocks at
 * their offsets) and `pages/<rel>.map` (a header: magic, logical size, lower
 * limit; at offset 4096 a bitmap, one bit per block, set once the delta holds
 * the block), beside `data/` in the same overlay. Only a process with the
 * library preloaded sees merged files; this module gives everything else
 * (diff, commits, exports) the same view: per block, the delta where the bit
 * is set, else the file under `data/` (the top layer that has it) below the
 * lower limit, else zeros, up to the logical size.
 */

export const PAGE_BLOCK = 8192;
/** Where the bitmap starts in a map file. */
const HEADER = 4096;
/** The library refuses files above this many blocks (EFBIG), so no map can describe more. */
const MAX_BLOCKS = 1 << 20;
/** "pgcowv01", as the library writes it (a little-endian uint64). */
const MAGIC = 0x7067636f77763031n;
/** The pages dir's own files: the epoch counter and half-made maps (`<rel>.map.<pid>.tmp`). */
const RELATION = /^(global|base\/\d+)\/\d+(_fsm|_vm|_init)?(\.\d+)?$/;

export interface PageMap {
  /** The merged file's size in bytes. */
  size: number;
  /** The file under data/ counts only below this (a truncate then an extend reads zeros). */
  lowerLimit: number;
  /** Blocks the delta holds (bits set below the logical size), ascending. */
  blocks: number[];
}

/** A map file's bytes; a bad magic, a short file or sizes the library cannot have written fail with where and why. */
export function parsePageMap(bytes: Buffer, where = 'page map'): PageMap {
  const bad = (why: string): never => {
    throw new SandboxError('SETUP_FAILED', `${where}: not a pg-page-cow block map (${why})`);
  };
  if (bytes.length < 24) bad(`${bytes.length} bytes, a header is 24`);
  if (bytes.readBigUInt64LE(0) !== MAGIC) bad(`magic 0x${bytes.readBigUInt64LE(0).toString(16)}, expected 0x${MAGIC.toString(16)}`);
  const size = bytes.readBigUInt64LE(8);
  const lowerLimit = bytes.readBigUInt64LE(16);
  if (size > BigInt(MAX_BLOCKS * PAGE_BLOCK)) bad(`logical size ${size} is above ${MAX_BLOCKS * PAGE_BLOCK}`);
  if (lowerLimit > size) bad(`lower limit ${lowerLimit} is above the logical size ${size}`);
  const count = Math.ceil(Number(size) / PAGE_BLOCK);
  if (bytes.length < HEADER + Math.ceil(count / 8)) bad(`${bytes.length} bytes, too short for the bitmap of ${count} blocks`);
  // The library sets bit (block % 64) of the uint64 word block / 64: little-endian, that is bit block % 8 of byte block / 8.
  const blocks: number[] = [];
  for (let byte = 0; byte < Math.ceil(count / 8); byte++) {
    const bits = bytes[HEADER + byte]!;
    if (bits) for (let bit = 0; bit < 8; bit++) if (bits & (1 << bit) && byte * 8 + bit < count) blocks.push(byte * 8 + bit);
  }
  return { size: Number(size), lowerLimit: Number(lowerLimit), blocks };
}

export async function readPageMap(file: string): Promise<PageMap> {
  return parsePageMap(await readFile(file), file);
}

export interface ChangedRelation {
  /** Relative to the data directory, e.g. `base/5/16384`. */
  rel: string;
  /** Blocks written (held by the delta). */
  blocks: number;
  /** The merged file's size in bytes. */
  size: number;
}

/** The relation files whose maps are in `pagesDir` (a layer's `pages/`), sorted by path; none if it does not exist. */
export async function changedRelations(pagesDir: string): Promise<ChangedRelation[]> {
  const out: ChangedRelation[] = [];
  const visit = async (rel: string): Promise<void> => {
    const entries = await readdir(join(pagesDir, rel), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' && !rel) return [];
      throw error;
    });
    for (const entry of entries) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile() && path.endsWith('.map') && RELATION.test(path.slice(0, -4))) {
        const map = await readPageMap(join(pagesDir, path));
        out.push({ rel: path.slice(0, -4), blocks: map.blocks.length, size: map.size });
      }
    }
  };
  await visit('');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/**
 * Whether a writable layer is the postgres preset's with copyUp 'pages': `pages/.epoch` (the library makes it before
 * any map) and a data directory (PG_VERSION) in the layer or its lowers. A project's own `pages/` has neither.
 */
export async function isPagesLayer(upper: string, lowers: readonly string[] = []): Promise<boolean> {
  const epoch = await lstat(join(upper, 'pages', '.epoch')).catch(() => undefined);
  return !!epoch?.isFile() && !!(await overlayFile([upper, ...lowers], 'data/PG_VERSION'));
}

/**
 * The file an overlay of `roots` (top first: the upper, then its lowers) shows at `rel`, as overlayfs resolves it:
 * the top root that has it, unless a whiteout or an opaque directory above it in a higher root hides it.
 */
export async function overlayFile(roots: readonly string[], rel: string): Promise<string | undefined> {
  const parts = rel.split('/');
  for (const root of roots) {
    const st = await lstat(join(root, rel)).catch(() => undefined);
    if (st) return st.isFile() ? join(root, rel) : undefined;
    // A whiteout or an opaque directory on the way down hides what deeper roots have there.
    for (let i = parts.length - 1; i > 0; i--) {
      const dir = join(root, ...parts.slice(0, i));
      const up = await lstat(dir).catch(() => undefined);
      if (!up) continue;
      if (!up.isDirectory() || (await isOpaque(dir))) return undefined;
      break;
    }
  }
  return undefined;
}

/** Where a merged block range comes from: the delta, the file under data/, or zeros. */
type Source = 'delta' | 'lower' | 'zero';

/** The map's blocks as runs of one source each, in order, covering [0, size). */
function runs(map: PageMap): { source: Source; start: number; end: number }[] {
  const held = new Set(map.blocks);
  const out: { source: Source; start: number; end: number }[] = [];
  for (let block = 0; block * PAGE_BLOCK < map.size; block++) {
    const start = block * PAGE_BLOCK;
    const end = Math.min(start + PAGE_BLOCK, map.size);
    // A block the delta lacks reads the lower file below the limit and zeros from there (the limit may cut a block).
    const pieces: [Source, number, number][] = held.has(block)
      ? [['delta', start, end]]
      : [
          ['lower', start, Math.min(end, Math.max(start, map.lowerLimit))],
          ['zero', Math.max(start, Math.min(end, map.lowerLimit)), end],
        ];
    for (const [source, from, to] of pieces) {
      if (from >= to) continue;
      const last = out[out.length - 1];
      if (last && last.source === source && last.end === from) last.end = to;
      else out.push({ source, start: from, end: to });
    }
  }
  return out;
}

/** Reads [start, end) of `fd` into `into` at `at`; past the file's end it leaves zeros (as the library's reads do). */
function readRange(fd: number, into: Buffer, at: number, start: number, end: number): void {
  let done = 0;
  while (done < end - start) {
    const n = readSync(fd, into, at + done, end - start - done, start + done);
    if (n === 0) break;
    done += n;
  }
}

export interface RelationFiles {
  map: PageMap;
  /** The delta file (absent if the map says no block is held). */
  delta: string | undefined;
  /** The file under data/ the overlay shows (absent: created in the sandbox and whited out since, or never there). */
  lower: string | undefined;
}

/** A relation file's map, delta and base file in an overlay of `roots` (each with data/ and pages/); undefined if it has no map. */
export async function relationFiles(roots: readonly string[], rel: string): Promise<RelationFiles | undefined> {
  const mapFile = await overlayFile(roots, `pages/${rel}.map`);
  if (!mapFile) return undefined;
  const map = await readPageMap(mapFile);
  const delta = await overlayFile(roots, `pages/${rel}`);
  if (!delta && map.blocks.length) throw new SandboxError('SETUP_FAILED', `${mapFile} marks ${map.blocks.length} blocks written but the delta is missing`);
  return { map, delta, lower: await overlayFile(roots, `data/${rel}`) };
}

/**
 * Writes the merged bytes of `files` to `write(buffer, offset)` run by run (at most 1 MiB at a time); zero runs are
 * skipped when `holes` (the caller truncates to the size and reads zeros there).
 */
function mergeRuns(files: RelationFiles, write: (chunk: Buffer, offset: number) => void, holes: boolean): void {
  const delta = files.delta ? openSync(files.delta, 'r') : undefined;
  const lower = files.lower ? openSync(files.lower, 'r') : undefined;
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (const run of runs(files.map)) {
      const fd = run.source === 'delta' ? delta : run.source === 'lower' ? lower : undefined;
      if (fd === undefined && holes) continue;
      for (let at = run.start; at < run.end; at += chunk.length) {
        const length = Math.min(chunk.length, run.end - at);
        chunk.fill(0, 0, length);
        if (fd !== undefined) readRange(fd, chunk, 0, at, at + length);
        write(chunk.subarray(0, length), at);
      }
    }
  } finally {
    if (delta !== undefined) closeSync(delta);
    if (lower !== undefined) closeSync(lower);
  }
}

/** The merged bytes, as a process with the library preloaded reads them (whole: for small files and tests). */
export function mergedBytes(files: RelationFiles): Buffer {
  const out = Buffer.alloc(files.map.size);
  mergeRuns(files, (chunk, offset) => chunk.copy(out, offset), true);
  return out;
}

/** Writes the merged file to `to` (created or replaced in place, sparse where neither the delta nor the lower file has data). */
export function writeMerged(files: RelationFiles, to: string, mode = 0o600): void {
  const fd = openSync(to, 'w', mode);
  try {
    mergeRuns(
      files,
      (chunk, offset) => {
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, offset + done);
      },
      true,
    );
    ftruncateSync(fd, files.map.size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes a writable layer of the postgres preset (its `upper`, over `lowers`, top first) a plain one: each relation
 * file with a map in `upper/pages` is written merged into `upper/data` (what overlayfs would have copied up, with
 * the writes in it), then `upper/pages` is removed. For code that commits or exports a layer: afterwards any reader
 * of the layer sees what the sandbox's server saw. Returns the files written.
 */
export async function mergePageDeltas(upper: string, lowers: readonly string[]): Promise<ChangedRelation[]> {
  const roots = [upper, ...lowers];
  const changed = await changedRelations(join(upper, 'pages'));
  for (const relation of changed) {
    const files = await relationFiles(roots, relation.rel);
    // A map whose relation file is gone (not through the library: it removes both) describes nothing a reader could open.
    if (!files?.lower) continue;
    const to = join(upper, 'data', relation.rel);
    const mode = (await lstat(files.lower)).mode & 0o7777;
    // The merge reads the lower file while writing `to`: when it is the same file (created in this layer), go through a copy.
    if (files.lower === to) {
      const temp = `${to}.merging`;
      writeMerged(files, temp, mode);
      await rename(temp, to);
    } else {
      // PostgreSQL's directories are 0700; overlayfs merges a directory made here with the lower one of that name.
      await mkdir(dirname(to), { recursive: true, mode: 0o700 });
      writeMerged(files, to, mode);
    }
  }
  await rm(join(upper, 'pages'), { recursive: true, force: true });
  return changed;
}
