import { constants, cpSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeScopedDir, plannedScopedDir } from '../home.js';
import { removeTree } from '../process/sweep.js';
import { workdirMountPoint } from './mounts.js';
import type { NormalizedOptions } from './options.js';

/*
 * Where overlayfs in a user namespace is missing (Linux < 5.11), or no place
 * holds its writable layer (see upper-placement.ts), or with
 * SANDBOX_RUN_OVERLAY=copy (tests force this path), every copy-on-write
 * mount becomes a private copy per sandbox, bound read-write: the same
 * isolation, at the cost of copying the data each time.
 */

let warned = false;

/** Whiteouts in a layer (0/0 character devices) delete what lower layers had. */
function applyWhiteouts(layer: string, target: string): void {
  for (const name of readdirSync(layer)) {
    const path = join(layer, name);
    const st = lstatSync(path);
    if (st.isCharacterDevice() && st.rdev === 0) rmSync(join(target, name), { recursive: true, force: true });
    else if (st.isDirectory()) applyWhiteouts(path, join(target, name));
  }
}

/** Merges a layer stack (top first) into `target`: bottom layer first, whiteouts applied. */
function materialize(lowers: readonly string[], target: string): void {
  mkdirSync(target, { recursive: true });
  for (const layer of [...lowers].reverse()) {
    cpSync(layer, target, {
      recursive: true,
      force: true,
      preserveTimestamps: true,
      verbatimSymlinks: true,
      // Reflinks where the filesystem can (btrfs, XFS): the copy then costs metadata only.
      mode: constants.COPYFILE_FICLONE,
      filter: (source) => !lstatSync(source).isCharacterDevice(),
    });
    applyWhiteouts(layer, target);
  }
}

/** Directories a launch makes on the host before the helper starts, and removes after it exits. */
export interface HostDirs {
  make(): void;
  remove(): void;
}

/**
 * Plans private copies for the copy-on-write mounts: the options with those
 * mounts rewritten into read-write binds of copies in a directory of this
 * process, and the host work (copying, removing) to do around the helper.
 */
export function planCopies(options: NormalizedOptions, reason: string): { options: NormalizedOptions; hostDirs: HostDirs } {
  const dir = plannedScopedDir('copies');
  const copies: { lowers: string[]; copy: string }[] = [];
  const binds = [...options.binds];
  let workdir = options.workdir;
  // A writable layer kept on the host needs a real overlay: it stays one.
  if (workdir === 'cow' && !options.workdirLayer) {
    const point = workdirMountPoint(options.cwd);
    copies.push({ lowers: [point], copy: join(dir, 'workdir') });
    binds.unshift({ source: join(dir, 'workdir'), target: point, readonly: false });
    workdir = 'none';
  }
  const overlays = options.overlays.filter((overlay, i) => {
    if (overlay.upper) return true;
    copies.push({ lowers: overlay.lowers, copy: join(dir, String(i)) });
    binds.push({ source: join(dir, String(i)), target: overlay.target, readonly: false });
    return false;
  });
  // Sandboxes cannot see each other's copies through the read-only host root.
  const masks = [...options.masks, dirname(dir)];
  const hostDirs: HostDirs = {
    make() {
      if (!warned) {
        warned = true;
        process.emitWarning(`no copy-on-write overlay here (${reason}): every sandbox gets private copies instead (slower, more disk)`, {
          code: 'SANDBOX_RUN_COPY_FALLBACK',
        });
      }
      makeScopedDir(dir);
      for (const { lowers, copy } of copies) materialize(lowers, copy);
    },
    remove: () => removeTree(dir),
  };
  return { options: { ...options, workdir, overlays, binds, masks }, hostDirs };
}
