import { chmod, copyFile, lstat, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Copies what a sandbox wrote under the project root back to the host, for
 * the paths `wanted` selects. `upper` is the overlay's writable layer: it
 * holds exactly the files the sandbox created or changed, and a whiteout
 * (a 0/0 character device) for each one it deleted. Returns the paths
 * written or removed, relative to the root.
 */
export async function writeBack(upper: string, root: string, wanted: (relative: string) => boolean): Promise<string[]> {
  const done: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(upper, relative), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const rel = relative ? `${relative}/${entry.name}` : entry.name;
      const from = join(upper, rel);
      const to = join(root, rel);
      if (entry.isDirectory()) {
        await walk(rel);
        continue;
      }
      // A deleted directory is one whiteout for the directory itself.
      if (!wanted(rel) && !(entry.isCharacterDevice() && wanted(`${rel}/-`))) continue;
      if (entry.isCharacterDevice()) {
        if ((await lstat(from)).rdev === 0) await rm(to, { recursive: true, force: true });
      } else if (entry.isSymbolicLink()) {
        await mkdir(dirname(to), { recursive: true });
        await rm(to, { force: true });
        await symlink(await readlink(from), to);
      } else if (entry.isFile()) {
        await mkdir(dirname(to), { recursive: true });
        await copyFile(from, to);
        await chmod(to, (await lstat(from)).mode & 0o7777);
      } else {
        continue;
      }
      done.push(rel);
    }
  };
  await walk('');
  return done;
}
