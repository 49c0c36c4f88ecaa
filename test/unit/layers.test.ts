// Pure parts of the layer store: digests, cache keys, names, path checks, locks.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { humanSize } from '../../src/cli/layer-commands.js';
import { climbsOut } from '../../src/layers/archive.js';
import { buildKey } from '../../src/layers/build.js';
import { withLock } from '../../src/layers/lock.js';
import { checkName } from '../../src/layers/store.js';
import { treeDigest } from '../../src/layers/tree.js';

const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-run-layers-unit-'));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tree(): string {
  const dir = temp();
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a'), 'a\n');
  writeFileSync(join(dir, 'sub/b'), 'b\n');
  symlinkSync('sub/b', join(dir, 'link'));
  return dir;
}

describe('treeDigest', () => {
  it('depends on paths, modes, link targets and contents, not on times', async () => {
    const one = tree();
    const two = tree();
    const digest = (await treeDigest(one)).digest;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    utimesSync(join(two, 'a'), new Date(0), new Date(0));
    expect((await treeDigest(two)).digest).toBe(digest);
    chmodSync(join(two, 'a'), 0o600);
    expect((await treeDigest(two)).digest).not.toBe(digest);
    const three = tree();
    writeFileSync(join(three, 'sub/b'), 'B\n');
    expect((await treeDigest(three)).digest).not.toBe(digest);
  });
});

describe('buildKey', () => {
  it('covers parent, command, mount point, cacheKey and input content', async () => {
    const cwd = temp();
    writeFileSync(join(cwd, 'seed.sql'), 'one');
    const recipe = { name: 'x', mountPoint: '/tmp/a', run: ['true'], inputs: ['*.sql'], cwd };
    const key = await buildKey(recipe, undefined);
    expect(await buildKey(recipe, undefined)).toBe(key);
    const others = await Promise.all([
      buildKey(recipe, `sha256:${'0'.repeat(64)}`),
      buildKey({ ...recipe, run: ['false'] }, undefined),
      buildKey({ ...recipe, mountPoint: '/tmp/b' }, undefined),
      buildKey({ ...recipe, cacheKey: 'v2' }, undefined),
    ]);
    for (const other of others) expect(other).not.toBe(key);
    writeFileSync(join(cwd, 'seed.sql'), 'two');
    expect(await buildKey(recipe, undefined)).not.toBe(key);
    await expect(buildKey({ ...recipe, inputs: ['*.none'] }, undefined)).rejects.toThrow(/no file matches/);
  });
});

describe('climbsOut', () => {
  it.each([
    ['', 'a/b', false],
    ['', '../x', true],
    ['sub', '../a', false],
    ['sub', '../../a', true],
    ['sub/deep', 'x/../../..', false],
    ['sub/deep', 'x/../../../..', true],
    ['sub', './././b', false],
    ['', 'a/../../b', true],
  ])('from %j to %j: %s', (from, target, out) => {
    expect(climbsOut(from, target)).toBe(out);
  });
});

describe('checkName', () => {
  it('accepts tags and refuses paths, digests and odd characters', () => {
    for (const name of ['seeded-db', 'pg15/seed:v1', 'a.b_c']) expect(() => checkName(name)).not.toThrow();
    for (const name of ['', '../x', 'a b', 'sha256:abc', '-x', 'a'.repeat(200)]) expect(() => checkName(name)).toThrow(/invalid layer name/);
  });
});

describe('withLock', () => {
  it('lets one holder in at a time', async () => {
    const file = join(temp(), 'lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withLock(file, async () => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setImmediate(resolve));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
  });

  it('breaks the lock of a holder that died', async () => {
    const file = join(temp(), 'lock');
    const dead = spawnSync('/bin/true').pid!;
    writeFileSync(file, String(dead));
    expect(await withLock(file, () => 'taken')).toBe('taken');
  });
});

describe('humanSize', () => {
  it('prints like docker images', () => {
    expect(humanSize(512)).toBe('512 B');
    expect(humanSize(12_300)).toBe('12.3 kB');
    expect(humanSize(317_000_000)).toBe('317.0 MB');
  });
});
