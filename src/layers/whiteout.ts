import { link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SandboxError } from '../errors.js';

/**
 * Makes every path a whiteout (a 0/0 character device). Node has no mknod:
 * coreutils' `mknod` makes one (no privilege needed since Linux 5.8) in
 * `scratch`, a directory on the same filesystem, and every path becomes a
 * hard link to it, which is how overlayfs shares its own whiteouts. One
 * process per call, however many paths.
 */
export async function makeWhiteouts(paths: readonly string[], scratch: string): Promise<void> {
  if (!paths.length) return;
  const seed = join(scratch, `.whiteout-${process.pid}`);
  const made = await execa('mknod', ['-m', '0', '--', seed, 'c', '0', '0'], { reject: false });
  if ((made as { code?: string }).code === 'ENOENT') throw new SandboxError('SETUP_FAILED', 'mknod is needed to restore whiteouts: install coreutils');
  if (made.exitCode !== 0)
    throw new SandboxError(
      'SETUP_FAILED',
      `cannot make a whiteout: ${
        String(made.stderr || made.message)
          .trim()
          .split('\n')[0]
      }`,
    );
  try {
    for (const path of paths) await link(seed, path);
  } finally {
    await rm(seed, { force: true });
  }
}
