// Layer store logic that needs no kernel features: digests, cache keys, locks, sizes.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { humanSize } from '../../src/cli/layer-commands.js';
import { buildKey } from '../../src/layers/build.js';
import { withLock } from '../../src/layers/lock.js';
import { treeDigest } from '../../src/layers/tree.js';

const root = mkdtempSync(join(tmpdir(), 'sandbox-run-unit-layers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function tree(): string {
  const dir = join(root, `t${++n}`);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a'), 'a');
  writeFileSync(join(dir, 'sub/b'), 'b');
  symlinkSync('a', join(dir, 'l'));
  return dir;
}

describe('treeDigest', () => {
  it('depends on content, modes and link targets, not on times or location', async () => {
    const [one, two] = [tree(), tree()];
    const base = (await treeDigest(one)).digest;
    utimesSync(join(two, 'a'), new Date(0), new Date(0));
    expect((await treeDigest(two)).digest).toBe(base);
    chmodSync(join(two, 'a'), 0o600);
    expect((await treeDigest(two)).digest).not.toBe(base);
    const three = tree();
    writeFileSync(join(three, 'sub/b'), 'B');
    expect((await treeDigest(three)).digest).not.toBe(base);
    const four = tree();
    rmSync(join(four, 'l'));
    symlinkSync('sub/b', join(four, 'l'));
    expect((await treeDigest(four)).digest).not.toBe(base);
  });
});

describe('buildKey', () => {
  it('changes with the parent, the command, the mount point, the cache key and input content', async () => {
    const cwd = tree();
    const recipe = { name: 'x', mountPoint: '/data', run: ['make'], inputs: ['sub/*'], cwd };
    const key = await buildKey(recipe, 'sha256:p');
    expect(await buildKey(recipe, 'sha256:p')).toBe(key);
    const others = [
      await buildKey(recipe, 'sha256:q'),
      await buildKey({ ...recipe, run: ['make', 'all'] }, 'sha256:p'),
      await buildKey({ ...recipe, mountPoint: '/other' }, 'sha256:p'),
      await buildKey({ ...recipe, cacheKey: 'v2' }, 'sha256:p'),
    ];
    writeFileSync(join(cwd, 'sub/b'), 'changed');
    others.push(await buildKey(recipe, 'sha256:p'));
    expect(new Set([key, ...others]).size).toBe(6);
    await expect(buildKey({ ...recipe, inputs: ['nothing-*'] }, undefined)).rejects.toThrow(/no file matches/);
  });
});

describe('withLock', () => {
  it('runs holders one at a time and breaks the lock of a dead process', async () => {
    const lock = join(root, 'lock');
    let inside = 0;
    let most = 0;
    const hold = () =>
      withLock(lock, async () => {
        most = Math.max(most, ++inside);
        await new Promise((resolve) => setImmediate(resolve));
        inside--;
      });
    await Promise.all([hold(), hold(), hold()]);
    expect(most).toBe(1);
    const dead = spawnSync('true').pid!;
    writeFileSync(lock, String(dead));
    expect(await withLock(lock, () => 'taken')).toBe('taken');
  });
});

describe('humanSize', () => {
  it('prints sizes like docker images', () => {
    expect(humanSize(512)).toBe('512 B');
    expect(humanSize(16_384)).toBe('16.4 kB');
    expect(humanSize(317_000_000)).toBe('317.0 MB');
  });
});
