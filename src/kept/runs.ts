import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sandboxRunHome } from '../home.js';
import { removeTree } from '../process/sweep.js';
import { parseSize } from '../sandbox/size.js';
import { MANIFEST } from './manifest.js';

/*
 * Kept runs live in $SANDBOX_RUN_HOME/runs/<run>/<sandbox>/: one <run> per
 * process that kept something (a runner invocation, a test process using
 * the API), one <sandbox> per kept sandbox in it. Their number (and, if set,
 * their total size) is capped: keeping one more removes the oldest.
 */

/** Default most kept sandboxes (SANDBOX_RUN_KEEP_MAX). */
export const DEFAULT_KEEP_MAX = 10;

export function runsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(sandboxRunHome(env), 'runs');
}

let processRun: string | undefined;

/** This process's run directory (not made until something is kept): runs/<time>-<pid>. */
export function processRunDir(env: NodeJS.ProcessEnv = process.env): string {
  processRun ??= `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
  return join(runsDir(env), processRun);
}

/** A free name in `run` for a kept sandbox: `preferred` (e.g. the runner's job number), else 1, 2, ... */
export function keptDirIn(run: string, preferred?: string): string {
  if (preferred && !existsSync(join(run, preferred))) return join(run, preferred);
  for (let n = 1; ; n++) if (!existsSync(join(run, String(n)))) return join(run, String(n));
}

/** Moves a finished kept sandbox into place (same filesystem: a rename). */
export function placeKept(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
  renameSync(from, to);
}

/** Disk use of a tree in bytes (blocks, as du counts them). */
export function treeSize(path: string): number {
  let total = 0;
  const visit = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    total += st.blocks * 512;
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(path);
  return total;
}

export interface KeptEntry {
  dir: string;
  keptAtMs: number;
}

/** Every kept sandbox, oldest first. */
export function listKept(env: NodeJS.ProcessEnv = process.env): KeptEntry[] {
  const entries: KeptEntry[] = [];
  const dirs = (path: string) => {
    try {
      return readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(path, e.name));
    } catch {
      return [];
    }
  };
  for (const run of dirs(runsDir(env)))
    for (const dir of dirs(run)) {
      const st = statSync(join(dir, MANIFEST), { throwIfNoEntry: false });
      if (st) entries.push({ dir, keptAtMs: st.mtimeMs });
    }
  return entries.sort((a, b) => a.keptAtMs - b.keptAtMs || (a.dir < b.dir ? -1 : 1));
}

/** Removes a kept sandbox, and its run directory once empty. */
export function removeKept(dir: string): void {
  removeTree(dir);
  try {
    rmdirSync(dirname(dir));
  } catch {
    // other kept sandboxes of that run remain
  }
}

export interface KeepCaps {
  count: number;
  bytes?: number;
}

/** SANDBOX_RUN_KEEP_MAX (default 10) and SANDBOX_RUN_KEEP_MAX_SIZE (e.g. 5g; default none). */
export function keepCaps(env: NodeJS.ProcessEnv = process.env): KeepCaps {
  const count = env.SANDBOX_RUN_KEEP_MAX === undefined || env.SANDBOX_RUN_KEEP_MAX === '' ? DEFAULT_KEEP_MAX : Number(env.SANDBOX_RUN_KEEP_MAX);
  if (!Number.isInteger(count) || count < 1) throw new Error(`SANDBOX_RUN_KEEP_MAX='${env.SANDBOX_RUN_KEEP_MAX}': expected a number of kept sandboxes >= 1`);
  const size = env.SANDBOX_RUN_KEEP_MAX_SIZE;
  return { count, ...(size ? { bytes: parseSize(size, 'SANDBOX_RUN_KEEP_MAX_SIZE') } : {}) };
}

/**
 * Applies the caps after `newest` was kept: the oldest others go first,
 * `newest` itself never. Returns what it removed.
 */
export function enforceCaps(newest: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const caps = keepCaps(env);
  const entries = listKept(env);
  const removed: string[] = [];
  let count = entries.length;
  let bytes = caps.bytes === undefined ? 0 : entries.reduce((sum, e) => sum + treeSize(e.dir), 0);
  for (const entry of entries) {
    if (count <= caps.count && (caps.bytes === undefined || bytes <= caps.bytes)) break;
    if (entry.dir === newest) continue;
    if (caps.bytes !== undefined) bytes -= treeSize(entry.dir);
    removeKept(entry.dir);
    removed.push(entry.dir);
    count--;
  }
  return removed;
}

/** `sandbox-run prune`: removes every kept run. Returns the run directories removed. */
export function removeKeptRuns(env: NodeJS.ProcessEnv = process.env): string[] {
  let names: string[];
  try {
    names = readdirSync(runsDir(env));
  } catch {
    return [];
  }
  for (const name of names) removeTree(join(runsDir(env), name));
  return names.map((name) => join(runsDir(env), name));
}
