import { constants, cpSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { workdirMountPoint } from '../helper/args.js';
import { processScopedDir } from '../home.js';
import { removeTree } from '../process/sweep.js';
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

/**
 * Rewrites copy-on-write mounts into read-write binds of private copies.
 * Returns the new options and the function that removes the copies.
 */
export function withCopies(options: NormalizedOptions, reason: string): { options: NormalizedOptions; cleanup: () => void } {
  if (!warned) {
    warned = true;
    process.emitWarning(`no copy-on-write overlay here (${reason}): every sandbox gets private copies instead (slower, more disk)`, { code: 'SANDBOX_RUN_COPY_FALLBACK' });
  }
  const dir = processScopedDir('copies');
  const binds = [...options.binds];
  let workdir = options.workdir;
  if (workdir === 'cow') {
    const point = workdirMountPoint(options.cwd);
    materialize([point], join(dir, 'workdir'));
    binds.unshift({ source: join(dir, 'workdir'), target: point, readonly: false });
    workdir = 'none';
  }
  const overlays = options.overlays.filter((overlay, i) => {
    if (overlay.upper) return true; // a kept writable layer needs a real overlay
    materialize(overlay.lowers, join(dir, String(i)));
    binds.push({ source: join(dir, String(i)), target: overlay.target, readonly: false });
    return false;
  });
  // Sandboxes cannot see each other's copies through the read-only host root.
  const masks = [...options.masks, dirname(dir)];
  return { options: { ...options, workdir, overlays, binds, masks }, cleanup: () => removeTree(dir) };
}
