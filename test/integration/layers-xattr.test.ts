// The layer code's native xattr and whiteout handling, on the filesystems
// layers and writable layers live on (the temp dir's and tmpfs), with no
// getfattr, setfattr or openssl involved.
import { lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { fileHash, hashFiles } from '../../src/layers/hash.js';
import { opaqueDirs, walkTree } from '../../src/layers/tree.js';
import { makeWhiteouts } from '../../src/layers/whiteout.js';
import { isOpaque, markOpaque } from '../../src/layers/xattr.js';
import { tempDir } from './support.js';

const tmp = tempDir('sandbox-run-xattr-');
afterAll(() => tmp.remove());
// /dev/shm is tmpfs, where user xattrs need Linux 6.6 (as tmpfs writable layers do).
const bases = [tmp.path, '/dev/shm'];

describe.each(bases)('overlay marks in %s', (base) => {
  it('reads and writes user.overlay.opaque in one pass, never through symlinks', async () => {
    const root = join(base, `xattr-${process.pid}-${base.length}`);
    mkdirSync(join(root, 'a/b/c'), { recursive: true });
    mkdirSync(join(root, 'plain'));
    writeFileSync(join(root, 'a/file'), 'x');
    symlinkSync('a/b', join(root, 'link'));
    try {
      await markOpaque(join(root, 'a/b'));
      await markOpaque(join(root, 'a/b/c'));
      expect(await isOpaque(join(root, 'a/b'))).toBe(true);
      expect(await isOpaque(join(root, 'plain'))).toBe(false);
      // lgetxattr: the link itself has no mark, whatever it points to.
      expect(await isOpaque(join(root, 'link'))).toBe(false);
      expect([...(await opaqueDirs(root))].sort()).toEqual(['a/b', 'a/b/c']);
      const opaque = (await walkTree(root)).filter((entry) => entry.opaque).map((entry) => entry.path);
      expect(opaque).toEqual(['a/b', 'a/b/c']);
      expect((await walkTree(root, { xattrs: false })).some((entry) => entry.opaque)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('native layer helpers', () => {
  it('fails in one line instead of reading a missing directory as not opaque', async () => {
    await expect(isOpaque('/nonexistent/dir')).rejects.toThrow(/^cannot read the extended attributes of \/nonexistent\/dir: No such file or directory/);
  });

  it('makes many whiteouts with one mknod: 0/0 character devices sharing one inode, nothing left beside them', async () => {
    const root = join(tmp.path, 'whiteouts');
    mkdirSync(join(root, 'tree/sub'), { recursive: true });
    const paths = Array.from({ length: 50 }, (_, i) => join(root, 'tree', i % 2 ? 'sub' : '', `gone-${i}`));
    await makeWhiteouts(paths, root);
    const inodes = new Set(
      paths
        .map((path) => lstatSync(path))
        .filter((st) => st.isCharacterDevice() && st.rdev === 0)
        .map((st) => st.ino),
    );
    expect(inodes.size).toBe(1);
    expect(lstatSync(paths[0]!).nlink).toBe(50);
    expect((await walkTree(join(root, 'tree'))).filter((entry) => entry.type === 'whiteout')).toHaveLength(50);
    expect(readdirSync(root)).toEqual(['tree']);
  });

  it('hashes on worker threads exactly as on the main thread', async () => {
    const root = join(tmp.path, 'hash');
    mkdirSync(root);
    const paths = Array.from({ length: 100 }, (_, i) => `f${i}`);
    paths.forEach((path, i) => writeFileSync(join(root, path), Buffer.alloc(i * 1000 + 1, i)));
    const hashes = await hashFiles(root, paths);
    expect(hashes.size).toBe(100);
    for (const path of ['f0', 'f42', 'f99']) expect(hashes.get(path)).toBe(await fileHash(join(root, path)));
    await expect(hashFiles(root, [...paths, 'missing'])).rejects.toThrow(/ENOENT/);
  });

  it('round-trips a layer with whiteouts in a read-only directory and several opaque directories', async () => {
    const store = await openStore({ dir: join(tmp.path, 'store') });
    const source = join(tmp.path, 'source');
    mkdirSync(join(source, 'ro'), { recursive: true });
    for (const name of ['a', 'b', 'c']) {
      writeFileSync(join(source, 'ro', name), name);
      mkdirSync(join(source, `d${name}`));
      writeFileSync(join(source, `d${name}`, 'old'), name);
    }
    await store.snapshot(source, { name: 'base' });
    const script = 'cd /tmp/l && rm ro/a ro/b && chmod 555 ro && for d in da db; do rm -r $d && mkdir $d; done';
    const child = await store.build({ name: 'child', parent: 'base', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', script] });
    const archive = join(tmp.path, 'child.tar');
    await store.export('child', archive);
    const other = await openStore({ dir: join(tmp.path, 'other') });
    const [imported] = await other.import(archive);
    expect(imported!.digest).toBe(child.digest);
    const entries = await walkTree(imported!.path);
    expect(entries.filter((entry) => entry.type === 'whiteout').map((entry) => entry.path)).toEqual(['ro/a', 'ro/b']);
    expect(entries.filter((entry) => entry.opaque).map((entry) => entry.path)).toEqual(['da', 'db']);
    expect(lstatSync(join(imported!.path, 'ro')).mode & 0o777).toBe(0o555);
  });
});
