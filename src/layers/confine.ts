import { lstat, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** Symlinks followed before giving up, as the kernel does (ELOOP): a loop leads nowhere. */
const MAX_HOPS = 40;

/**
 * Whether the symlink at `path` (relative to `root`) leads above `root` once
 * the tree's own symlinks are followed. Each target may stay inside read
 * alone (`d/l -> ..` and `x -> d/l/../..`) while the chain leads out, which
 * a check of one entry at a time cannot see. Missing parts count lexically.
 */
export async function symlinkLeaves(root: string, path: string): Promise<boolean> {
  const at = posix
    .dirname(path)
    .split('/')
    .filter((part) => part && part !== '.');
  const target = await readlink(join(root, path));
  if (target.startsWith('/')) return true;
  const rest = target.split('/');
  for (let hops = 0; rest.length; ) {
    const part = rest.shift()!;
    if (!part || part === '.') continue;
    if (part === '..') {
      if (!at.length) return true;
      at.pop();
      continue;
    }
    const next = join(root, ...at, part);
    const st = await lstat(next).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      at.push(part);
      continue;
    }
    if (++hops > MAX_HOPS) return false;
    const link = await readlink(next);
    if (link.startsWith('/')) return true;
    rest.unshift(...link.split('/'));
  }
  return false;
}
