import { lstatSync, opendirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { workdirMountPoint } from './mounts.js';
import type { SandboxOptions } from './options.js';

/**
 * A sandbox's user namespace maps only the caller's uid and gid. Files in a
 * copy-on-write tree with any other owner or group show as nobody/nogroup,
 * and overlayfs cannot give the copied-up file that owner: the write fails
 * with EOVERFLOW ("Value too large for defined data type"), although the
 * caller may write the file on the host. This module finds such files and
 * says how to fix them.
 */

/** The host ids a sandbox maps: the caller's real uid and gid (root's too). */
export interface MappedIds {
  uid: number;
  gid: number;
}

export interface UnmappedFile {
  path: string;
  uid: number;
  gid: number;
  directory: boolean;
}

export interface ScanBudget {
  /** Stop after this many unmappable entries. */
  found: number;
  /** Stop after looking at this many entries. */
  entries: number;
  /** Stop after this long (ms). */
  ms: number;
}

export interface ScanResult {
  files: UnmappedFile[];
  entries: number;
  /** True when a budget ran out before the whole tree was seen. */
  partial: boolean;
}

/** The marker of the failure in a command's output (sh, coreutils, Python, Node). */
export const EOVERFLOW_OUTPUT = /Value too large for defined data type|EOVERFLOW/i;

export function callerIds(): MappedIds {
  return { uid: process.getuid!(), gid: process.getgid!() };
}

/**
 * Depth-first, directories before their contents, so a directory with a
 * foreign group is named rather than everything below it. Unreadable
 * directories are skipped: they fail in the sandbox for plainer reasons.
 */
export function findUnmappedFiles(roots: readonly string[], ids: MappedIds, budget: ScanBudget): ScanResult {
  const deadline = Date.now() + budget.ms;
  const files: UnmappedFile[] = [];
  let entries = 0;
  const stack = [...roots].reverse();
  const rootSet = new Set(roots);
  while (stack.length > 0) {
    if (files.length >= budget.found || entries >= budget.entries || Date.now() > deadline) return { files, entries, partial: true };
    const path = stack.pop()!;
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    entries++;
    // The overlay's root takes its owner from the upper dir: it is never copied up.
    if (!rootSet.has(path) && (stat.uid !== ids.uid || stat.gid !== ids.gid)) files.push({ path, uid: stat.uid, gid: stat.gid, directory: stat.isDirectory() });
    if (!stat.isDirectory()) continue;
    let dir;
    try {
      dir = opendirSync(path);
    } catch {
      continue;
    }
    const children: string[] = [];
    try {
      for (let entry = dir.readSync(); entry; entry = dir.readSync()) children.push(join(path, entry.name));
    } catch {
      // A directory that vanished or became unreadable while we read it.
    } finally {
      dir.closeSync();
    }
    children.sort();
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return { files, entries, partial: false };
}

function idNames(file: string): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id) && !names.has(Number(id))) names.set(Number(id), name);
    }
  } catch {
    // No such file (a minimal container): numbers only.
  }
  return names;
}

/** Owner and group names as `ls -l` shows them; numbers where /etc does not name them (NSS-only users). */
export interface IdNames {
  user(uid: number): string;
  group(gid: number): string;
}

let systemNames: IdNames | undefined;
export function etcNames(): IdNames {
  if (!systemNames) {
    const users = idNames('/etc/passwd');
    const groups = idNames('/etc/group');
    systemNames = { user: (uid) => users.get(uid) ?? String(uid), group: (gid) => groups.get(gid) ?? String(gid) };
  }
  return systemNames;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The finding and the fix, apart for `doctor`; `line` joins them for a summary. */
export interface UnmappedMessage {
  problem: string;
  fix: string;
  line: string;
}

/** What was found, where. */
export interface UnmappedFinding {
  files: readonly UnmappedFile[];
  ids: MappedIds;
  /** Paths inside it are shown relative to it. */
  cwd: string;
  /** The scanned tree holding the first file: with several files, the fix covers it. */
  tree: string;
  /** The scan stopped early: there may be more. */
  atLeast?: boolean;
}

/** A path as short as it can be said: relative to cwd when inside it. */
function shortPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * What a failed job's summary, `sandbox-run -- CMD` and `doctor --cwd` say:
 * which file, which owner, and the fix, naming the file itself or, with
 * several, the whole tree.
 */
export function unmappedMessage(finding: UnmappedFinding, names: IdNames = etcNames()): UnmappedMessage {
  const { files, ids, atLeast = false } = finding;
  const first = files[0]!;
  const others = files.length - 1;
  const more = others > 0 ? `, as it does for ${others}${atLeast ? '+' : ''} more file${others === 1 && !atLeast ? '' : 's'}` : '';
  const owner = (uid: number, gid: number) => `${names.user(uid)}:${names.group(gid)}`;
  const foreignUser = files.some((file) => file.uid !== ids.uid);
  const several = files.length > 1 || atLeast;
  const recursive = several || first.directory ? '-R ' : '';
  const target = shellQuote(several ? finding.tree : first.path);
  // The owner may chgrp to their own group; another owner's file needs root.
  const command = foreignUser
    ? `${ids.uid === 0 ? '' : 'sudo '}chown ${recursive}${owner(ids.uid, ids.gid)} ${target}`
    : `chgrp ${recursive}${names.group(ids.gid)} ${target}`;
  const problem =
    `${shortPath(first.path, finding.cwd)} is owned by ${owner(first.uid, first.gid)}, but a sandbox maps only your own user and group ` +
    `(${owner(ids.uid, ids.gid)}), so writing it there fails with "Value too large for defined data type"${more}`;
  const fix = `${command}, or run with --workdir rw`;
  return { problem, fix, line: `${problem}; fix: ${fix}` };
}

/**
 * The host trees a sandbox shows copy-on-write: the working directory (by
 * default) and every overlay's lowers. Paths resolve as normalizeOptions
 * does; a path that does not exist is skipped by the scan.
 */
export function copyOnWriteRoots(options: SandboxOptions): { roots: string[]; base: string } {
  const base = resolve(options.cwd ?? process.cwd());
  const roots = (options.workdir ?? 'cow') === 'cow' ? [workdirMountPoint(base)] : [];
  for (const overlay of options.overlays ?? []) {
    const lowers = typeof overlay.lower === 'string' ? [overlay.lower] : overlay.lower;
    roots.push(...lowers.map((lower) => resolve(base, lower)));
  }
  return { roots: [...new Set(roots)], base };
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether the output names this path as a whole word (as `sh: cannot create PATH:` or `touch: 'PATH'` do). */
function mentions(output: string, path: string): boolean {
  return new RegExp(`(^|[\\s'"\`/(])${escapeRegExp(path)}($|[\\s'":,)])`, 'm').test(output);
}

// Jobs of one run fail alike: scan their trees once, not once per job. The
// trees are the host's, which copy-on-write sandboxes never change.
const recentScans = new Map<string, { at: number; result: ScanResult }>();
function cachedScan(roots: readonly string[], ids: MappedIds, budget: ScanBudget): ScanResult {
  const key = JSON.stringify([roots, ids, budget]);
  const cached = recentScans.get(key);
  if (cached && Date.now() - cached.at < 60_000) return cached.result;
  const result = findUnmappedFiles(roots, ids, budget);
  recentScans.set(key, { at: Date.now(), result });
  return result;
}

/**
 * The hint for a sandbox that failed: a bounded scan of its copy-on-write
 * trees on the host. Given the command's output, only when it shows the
 * failure, and a file the output names comes first.
 */
export function unmappedHint(options: SandboxOptions, output?: string, budget: ScanBudget = { found: 20, entries: 200_000, ms: 1000 }): string | undefined {
  if (output !== undefined && !EOVERFLOW_OUTPUT.test(output)) return undefined;
  const { roots, base } = copyOnWriteRoots(options);
  const ids = callerIds();
  const { files, partial } = cachedScan(roots, ids, budget);
  if (files.length === 0) return undefined;
  const named = output === undefined ? -1 : files.findIndex((file) => mentions(output, file.path) || mentions(output, shortPath(file.path, base)));
  const ordered = named > 0 ? [files[named]!, ...files.filter((_, i) => i !== named)] : files;
  const tree = roots.find((root) => ordered[0]!.path.startsWith(`${root}/`)) ?? base;
  return unmappedMessage({ files: ordered, ids, cwd: base, tree, atLeast: partial && files.length >= budget.found }).line;
}
