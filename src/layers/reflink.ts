import { constants, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sandboxRunHome } from '../home.js';
import { ownedName } from '../process/sweep.js';
import { diskUpperBase } from '../sandbox/upper-placement.js';

/*
 * Reflink copy-up. Overlayfs copies a file up by asking the upper
 * filesystem to clone the lower file's extents first (ovl_copy_up_file:
 * vfs_clone_file_range, then a data copy only if that fails), which works
 * when lower and upper are one reflink filesystem (XFS with reflink=1,
 * btrfs). A copy-up then costs metadata, and later writes are block-level
 * copy-on-write by the filesystem: a sandbox pays for the blocks it writes,
 * not for the files it opens.
 *
 * The check is the real operation: FICLONE of a file in the store into the
 * directory where per-sandbox disk uppers go ($SANDBOX_RUN_HOME/uppers,
 * see upper-placement.ts). An overlay with `upperOnDisk: true` then gets its
 * writable layer there.
 *
 *   const reflinks = await reflinkUppers(store.dir);
 *   overlays: [{ lower, target, ...(reflinks ? { upperOnDisk: true } : {}) }]
 */

/** Where reflinked uppers go, when the store's filesystem clones into it. */
export interface ReflinkUppers {
  /** The directory under which per-sandbox disk uppers are made (the `upperOnDisk` overlays' place). */
  dir: string;
}

/** What a probe found: the verdict, and the error that said no. */
interface Verdict {
  clones: boolean;
  detail: string;
}

const PROBE_FILE = 'reflink-probe.json';
const memo = new Map<string, Promise<Verdict>>();

/** The verdict holds for this boot and these two directories' filesystems (a remount or another disk changes st_dev). */
function cacheKey(storeRoot: string, dir: string): string | undefined {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return [bootId, storeRoot, statSync(storeRoot).dev, dir, statSync(dir).dev].join(' ');
  } catch {
    return undefined;
  }
}

function readCache(file: string): Record<string, Verdict> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Verdict>;
  } catch {
    return {};
  }
}

function writeCache(file: string, key: string, verdict: Verdict): void {
  try {
    const temp = `${file}.${ownedName()}`;
    writeFileSync(temp, `${JSON.stringify({ ...readCache(file), [key]: verdict })}\n`);
    renameSync(temp, file);
  } catch {
    // a read-only home only costs the next process a probe
  }
}

/** Clones a small file from the store's tmp/ into `dir` with FICLONE_FORCE (no silent copy). Both probe files are removed. */
async function probe(storeRoot: string, dir: string): Promise<Verdict> {
  const name = `.reflink-${ownedName()}`;
  // tmp/ and uppers/ are swept of dead processes' entries: a probe killed halfway leaves nothing for long.
  const source = join(storeRoot, 'tmp', name);
  const target = join(dir, name);
  try {
    await writeFile(source, Buffer.alloc(4096, 1));
    await copyFile(source, target, constants.COPYFILE_FICLONE_FORCE);
    return { clones: true, detail: 'FICLONE from the store into the uppers directory works' };
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return { clones: false, detail: code ?? message };
  } finally {
    await Promise.all([rm(source, { force: true }), rm(target, { force: true })]);
  }
}

async function verdict(storeRoot: string, env: NodeJS.ProcessEnv): Promise<Verdict> {
  const dir = diskUpperBase(env);
  try {
    mkdirSync(dir, { recursive: true });
    mkdirSync(join(storeRoot, 'tmp'), { recursive: true });
  } catch (error) {
    return { clones: false, detail: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
  const key = cacheKey(storeRoot, dir);
  const file = join(sandboxRunHome(env), PROBE_FILE);
  const cached = key === undefined ? undefined : readCache(file)[key];
  if (cached) return cached;
  const found = await probe(storeRoot, dir);
  if (key !== undefined) writeCache(file, key, found);
  return found;
}

function remembered(storeRoot: string, env: NodeJS.ProcessEnv): Promise<Verdict> {
  const key = `${storeRoot}\0${sandboxRunHome(env)}`;
  let found = memo.get(key);
  if (!found) {
    found = verdict(storeRoot, env);
    memo.set(key, found);
  }
  return found;
}

/**
 * Whether overlayfs copy-up from layers in the store at `storeRoot` into
 * disk uppers clones extents: `{ dir }` (where those uppers go) when it
 * does, undefined when it does not (ext4, tmpfs, another filesystem, a
 * read-only store). Probed once per process and remembered per boot.
 */
export async function reflinkUppers(storeRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<ReflinkUppers | undefined> {
  return (await remembered(storeRoot, env)).clones ? { dir: diskUpperBase(env) } : undefined;
}

/** The same check with its reason, for doctor: what the store's filesystem does with a clone. */
export async function reflinkVerdict(storeRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<Verdict & { dir: string }> {
  return { ...(await remembered(storeRoot, env)), dir: diskUpperBase(env) };
}

/** Forgets what was probed (doctor probes afresh). */
export function forgetReflinkVerdicts(env: NodeJS.ProcessEnv = process.env): void {
  memo.clear();
  rmSync(join(sandboxRunHome(env), PROBE_FILE), { force: true });
}
