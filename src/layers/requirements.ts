import { lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWhiteouts } from './whiteout.js';
import { isOpaque, markOpaque, OPAQUE_XATTR } from './xattr.js';

/**
 * Does, in a scratch directory under `base`, what importing and walking
 * layers need from this machine: set and read `user.overlay.opaque`
 * (@napi-rs/xattr, the filesystem's user xattrs) and make a whiteout
 * (coreutils' mknod). Resolves to what was proven; throws the first failure in one line.
 */
export async function checkLayerTools(base = tmpdir()): Promise<string> {
  const scratch = mkdtempSync(join(base, 'sandbox-run-doctor-layers-'));
  try {
    const dir = join(scratch, 'dir');
    mkdirSync(dir);
    await markOpaque(dir);
    if (!(await isOpaque(dir))) throw new Error(`${OPAQUE_XATTR} set on ${dir} does not read back`);
    const whiteout = join(dir, 'gone');
    await makeWhiteouts([whiteout], scratch);
    const st = lstatSync(whiteout);
    if (!st.isCharacterDevice() || st.rdev !== 0) throw new Error(`mknod made ${whiteout}, which is no 0/0 character device`);
    return `${OPAQUE_XATTR} read and written natively (@napi-rs/xattr) and a whiteout made (mknod) in ${base}`;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
