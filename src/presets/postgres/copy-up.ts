import { accessSync, constants, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandboxError } from '../../errors.js';
import { type ReflinkUppers, reflinkUppers } from '../../layers/reflink.js';
import { hiddenInSandbox } from '../../sandbox/mounts.js';

/**
 * How a sandbox's PostgreSQL pays for the seeded files it touches.
 *
 * overlayfs copies a lower file whole into the writable layer when it is
 * opened for writing, and PostgreSQL opens every relation segment O_RDWR:
 * with a plain overlay ('overlay') even a SELECT copies each table it reads.
 * - 'reflink': the data's writable layer is on disk beside the store, on a
 *   filesystem that clones extents (XFS reflink=1, btrfs): a copy-up costs
 *   metadata, later writes cost the blocks they change. The library below is
 *   preloaded too where it is built: a clone is a file of its own with its
 *   own page cache, so reads that copied nothing up share the store's cache.
 * - 'lazy-open': the server runs with pg-lazy-write.so preloaded, which opens
 *   relation files read-only until the first write: reads copy nothing, a
 *   write still copies the whole segment file (up to 1 GB) into memory.
 * - 'pages': pg-page-cow.so is preloaded before the library above and never
 *   opens a relation file for writing: written 8 KiB blocks go to a sparse
 *   delta file beside the data directory (`<mount>/pages`), so a write costs
 *   the pages it writes.
 * - 'auto' (default): 'reflink' where the store clones (the filesystem does
 *   the block-level copy, on disk), else 'pages' where both libraries are
 *   built and the server is a major version their write paths were checked
 *   against (PAGES_VERIFIED), else 'lazy-open' where its library is built,
 *   else 'overlay'.
 */
export type CopyUp = 'auto' | 'reflink' | 'lazy-open' | 'pages' | 'overlay';
export type CopyUpMechanism = Exclude<CopyUp, 'auto'>;
export const COPY_UPS: readonly CopyUp[] = ['auto', 'reflink', 'lazy-open', 'pages', 'overlay'];

/**
 * The PostgreSQL majors whose every relation-file write path the libraries were run against (test/integration/
 * pg-versions.test.ts): 'auto' picks 'pages' only for these; another major gets 'lazy-open', whose failure mode is
 * a whole-file copy, not a wrong page. An explicit 'pages' is honoured on any major.
 */
export const PAGES_VERIFIED: readonly number[] = [15, 16, 17, 18];

/** The directory below which the library opens O_RDWR files read-only (unset: it does nothing). */
export const LAZY_DIR_ENV = 'SANDBOX_RUN_PG_LAZY_DIR';
/** Another build of the library (e.g. helper/build/pg-lazy-write-sanitized.so). */
export const LAZY_LIBRARY_ENV = 'SANDBOX_RUN_PG_LAZY_LIBRARY';
/** Where pg-page-cow.so keeps each relation file's delta and block map (unset: it does nothing). */
export const PAGES_DIR_ENV = 'SANDBOX_RUN_PG_PAGES_DIR';
/** Another build of the page-level library (e.g. helper/build/pg-page-cow-sanitized.so). */
export const PAGES_LIBRARY_ENV = 'SANDBOX_RUN_PG_PAGES_LIBRARY';

/** Where `npm install` builds it (same depth from src/ and dist/); sandboxes see it through the read-only host root. */
const BUILT_LIBRARY = fileURLToPath(new URL('../../../helper/build/pg-lazy-write.so', import.meta.url));
const BUILT_PAGES_LIBRARY = fileURLToPath(new URL('../../../helper/build/pg-page-cow.so', import.meta.url));

/** What the preset decided, and why (doctor and the `copyUp` getter say it). */
export type CopyUpChoice =
  | { mechanism: 'reflink'; reflink: ReflinkUppers; library?: string; reason: string }
  | { mechanism: 'lazy-open'; library: string; reason: string }
  | { mechanism: 'pages'; library: string; pagesLibrary: string; reason: string }
  | { mechanism: 'overlay'; reason: string };

/** The preload library, if built and readable (it must be readable by the sandbox's uid too: the build makes it 0755). */
export function lazyWriteLibrary(env: NodeJS.ProcessEnv = process.env, path = env[LAZY_LIBRARY_ENV] || BUILT_LIBRARY): string | undefined {
  // The dynamic loader splits LD_PRELOAD at spaces and colons: such a path would be ignored with a warning, not loaded.
  if (/[\s:]/.test(path)) return undefined;
  try {
    accessSync(path, constants.R_OK);
    // A root caller's sandbox runs as 65534: the loader there needs the file readable by others (a umask 077 build is not).
    if (process.getuid?.() === 0 && !(statSync(path).mode & 0o004)) return undefined;
    return path;
  } catch {
    return undefined;
  }
}

/** Decides the mechanism once per prepared layer; an explicit choice the machine cannot give fails with what to do. */
export async function chooseCopyUp(asked: CopyUp, storeRoot: string, options: { major?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CopyUpChoice> {
  const env = options.env ?? process.env;
  if (asked === 'overlay') return { mechanism: 'overlay', reason: 'copyUp: overlay (a file opened for writing is copied up whole)' };
  if (asked === 'reflink' || asked === 'auto') {
    const reflink = await reflinkUppers(storeRoot, env);
    if (reflink) {
      const library = lazyWriteLibrary(env);
      const reason = `the store's filesystem clones into ${reflink.dir} (copy-up by reflink)`;
      return library
        ? { mechanism: 'reflink', reflink, library, reason: `${reason}, and ${library} keeps reads from copying up at all (one page cache)` }
        : { mechanism: 'reflink', reflink, reason };
    }
    if (asked === 'reflink')
      throw new SandboxError(
        'BAD_OPTIONS',
        `postgres preset: copyUp 'reflink' needs SANDBOX_RUN_HOME on a filesystem that clones (XFS reflink=1, btrfs); ${storeRoot} does not: use 'auto'`,
      );
  }
  const verified = options.major === undefined || PAGES_VERIFIED.includes(options.major);
  if (asked === 'pages' || (asked === 'auto' && verified)) {
    const library = lazyWriteLibrary(env);
    const pagesLibrary = lazyWriteLibrary(env, env[PAGES_LIBRARY_ENV] || BUILT_PAGES_LIBRARY);
    if (library && pagesLibrary)
      return { mechanism: 'pages', library, pagesLibrary, reason: `${pagesLibrary} keeps written relation blocks in a delta file (page-level copy-on-write)` };
    if (asked === 'pages')
      throw new SandboxError(
        'BAD_OPTIONS',
        `postgres preset: copyUp 'pages' needs ${env[PAGES_LIBRARY_ENV] || BUILT_PAGES_LIBRARY} and ${env[LAZY_LIBRARY_ENV] || BUILT_LIBRARY}: run \`npm rebuild sandbox-run\` (needs a C compiler)`,
      );
  }
  const library = lazyWriteLibrary(env);
  if (library) {
    const why = verified ? '' : ` (PostgreSQL ${options.major} is not one of the majors 'pages' is verified on, ${PAGES_VERIFIED.join(', ')})`;
    return { mechanism: 'lazy-open', library, reason: `${library} opens relation files read-only until their first write${why}` };
  }
  if (asked === 'lazy-open')
    throw new SandboxError(
      'BAD_OPTIONS',
      `postgres preset: copyUp 'lazy-open' needs ${env[LAZY_LIBRARY_ENV] || BUILT_LIBRARY}: run \`npm rebuild sandbox-run\` (needs a C compiler), or use 'auto'`,
    );
  return { mechanism: 'overlay', reason: 'no reflink filesystem and no pg-lazy-write.so (run `npm rebuild sandbox-run`): plain overlay copy-up' };
}

/** The preload library the server runs with, if any (lazy-open, and reflink where it is built). */
export function preloadedLibrary(choice: CopyUpChoice): string | undefined {
  return choice.mechanism === 'overlay' ? undefined : choice.library;
}

/**
 * The server's variables when the library is preloaded: the library and the data directory it works in; for 'pages' the
 * page-level library first (it hands every other file to the lazy one) and its directory, beside the data in the same overlay.
 */
export function lazyOpenEnv(choice: CopyUpChoice, dataDir: string): Record<string, string> {
  const library = preloadedLibrary(choice);
  if (!library) return {};
  if (choice.mechanism === 'pages') return { LD_PRELOAD: `${choice.pagesLibrary} ${library}`, [LAZY_DIR_ENV]: dataDir, [PAGES_DIR_ENV]: pagesDir(dataDir) };
  return { LD_PRELOAD: library, [LAZY_DIR_ENV]: dataDir };
}

/**
 * The preloaded libraries, each bound read-only at its own path where the sandbox would not see it: the sandbox's
 * /tmp is its own, so a checkout under /tmp (a CI job's) would leave LD_PRELOAD naming a missing file, which the
 * loader skips with a warning, and the server would run on a plain overlay. Files, not their directory: the
 * sandbox sees the libraries and nothing else of it.
 */
export function preloadBinds(choice: CopyUpChoice): { source: string; readonly: true }[] {
  const libraries = choice.mechanism === 'pages' ? [choice.pagesLibrary, choice.library] : [preloadedLibrary(choice)];
  return libraries.filter((library): library is string => !!library && hiddenInSandbox(library)).map((library) => ({ source: library, readonly: true }));
}

/** What the dynamic loader logs when it skips an LD_PRELOAD entry (missing, unreadable, another architecture); it then runs on. */
export const PRELOAD_SKIPPED = /ld\.so: object [^\n]* from LD_PRELOAD cannot be preloaded[^\n]*/;

/** Where copyUp 'pages' keeps deltas and block maps: outside the data directory, so PostgreSQL's scans and size sums never see them. */
export function pagesDir(dataDir: string): string {
  return join(dirname(dataDir), 'pages');
}

/** Server settings the library needs: PostgreSQL 18's io_uring would write past it, so I/O stays synchronous. */
export function lazyOpenSettings(choice: CopyUpChoice, major: number): string[] {
  return preloadedLibrary(choice) && major >= 18 ? ['-c', 'io_method=sync'] : [];
}
