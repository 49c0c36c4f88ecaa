import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyOnWriteRoots, EOVERFLOW_OUTPUT, findUnmappedFiles, type IdNames, unmappedMessage } from '../../src/sandbox/unmapped.js';
import { tempDir } from '../integration/support.js';

const names: IdNames = {
  user: (uid) => ({ 0: 'root', 1000: 'dev', 1001: 'ops' })[uid] ?? String(uid),
  group: (gid) => ({ 0: 'root', 1000: 'dev', 2000: 'shared' })[gid] ?? String(gid),
};
const dev = { uid: 1000, gid: 1000 };
const file = (path: string, uid: number, gid: number, directory = false) => ({ path, uid, gid, directory });

describe('the unmapped-owner message', () => {
  it('names the file, its owner and chgrp for a file of yours with another group', () => {
    const message = unmappedMessage({ files: [file('/src/app/data/seed.sql', 1000, 2000)], ids: dev, cwd: '/src/app', tree: '/src/app' }, names);
    expect(message.line).toBe(
      'data/seed.sql is owned by dev:shared, but a sandbox maps only your own user and group (dev:dev), ' +
        'so writing it there fails with "Value too large for defined data type"; fix: chgrp dev /src/app/data/seed.sql, or run with --workdir rw',
    );
    expect(message.line).toBe(`${message.problem}; fix: ${message.fix}`);
  });

  it('needs sudo chown for another owner, -R for a directory or several files, and quotes paths', () => {
    const several = unmappedMessage({ files: [file('/w/a', 1000, 2000), file('/w/b', 1001, 1001)], ids: dev, cwd: '/w', tree: '/w' }, names);
    expect(several.problem).toMatch(/^a is owned by dev:shared, .*"Value too large for defined data type", as it does for 1 more file$/);
    expect(several.fix).toBe('sudo chown -R dev:dev /w, or run with --workdir rw');
    const dir = unmappedMessage({ files: [file("/w/it's", 1000, 2000, true)], ids: dev, cwd: '/w', tree: '/w' }, names);
    expect(dir.fix).toBe(`chgrp -R dev '/w/it'\\''s', or run with --workdir rw`);
    const capped = unmappedMessage({ files: [file('/w/a', 7, 7), file('/w/b', 7, 7)], ids: dev, cwd: '/w', tree: '/w', atLeast: true }, names);
    expect(capped.problem).toMatch(/as it does for 1\+ more files$/);
  });

  it('has no sudo for root, numbers for unnamed ids, absolute paths outside the working directory', () => {
    const root = unmappedMessage({ files: [file('/srv/layer/x', 1001, 4242)], ids: { uid: 0, gid: 0 }, cwd: '/work', tree: '/srv/layer' }, names);
    expect(root.line).toMatch(/^\/srv\/layer\/x is owned by ops:4242, but a sandbox maps only your own user and group \(root:root\)/);
    expect(root.fix).toBe('chown root:root /srv/layer/x, or run with --workdir rw');
  });

  it('recognises the failure in the output of sh, Python and Node', () => {
    for (const output of [
      'sh: 1: cannot create f: Value too large for defined data type',
      "OSError: [Errno 75] Value too large for defined data type: 'f'",
      "Error: EOVERFLOW: value too large for defined data type, open 'f'",
    ])
      expect(EOVERFLOW_OUTPUT.test(output)).toBe(true);
    expect(EOVERFLOW_OUTPUT.test('No space left on device')).toBe(false);
  });
});

describe('the bounded scan', () => {
  const dir = tempDir('sandbox-run-unit-unmapped-');
  afterAll(() => dir.remove());
  mkdirSync(join(dir.path, 'a', 'b'), { recursive: true });
  for (const name of ['a/b/c', 'a/d', 'e']) writeFileSync(join(dir.path, name), name);

  it('reports entries whose uid or gid are not the mapped ones, directories before their contents, never the root', () => {
    // Pretend to be someone else: then everything below the root is foreign.
    const all = findUnmappedFiles([dir.path], { uid: 99_999, gid: 99_999 }, { found: 100, entries: 100, ms: 10_000 });
    expect(all.files.map((f) => f.path.slice(dir.path.length + 1))).toEqual(['a', 'a/b', 'a/b/c', 'a/d', 'e']);
    expect(all).toMatchObject({ entries: 6, partial: false });
    expect(findUnmappedFiles([dir.path], { uid: process.getuid!(), gid: process.getgid!() }, { found: 100, entries: 100, ms: 10_000 }).files).toEqual([]);
  });

  it('stops at the first few found, or after so many entries', () => {
    expect(findUnmappedFiles([dir.path], { uid: 99_999, gid: 99_999 }, { found: 2, entries: 100, ms: 10_000 })).toMatchObject({
      partial: true,
      files: [{}, {}],
    });
    expect(findUnmappedFiles([dir.path], { uid: 99_999, gid: 99_999 }, { found: 100, entries: 3, ms: 10_000 })).toMatchObject({ partial: true, entries: 3 });
  });

  it('scans the working directory (its top dir under /tmp) when copy-on-write, and overlay lowers', () => {
    expect(copyOnWriteRoots({ cwd: '/tmp/a/b', overlays: [{ lower: ['x', '/y'], target: '/t' }] })).toEqual({
      roots: ['/tmp/a', '/tmp/a/b/x', '/y'],
      base: '/tmp/a/b',
    });
    expect(copyOnWriteRoots({ cwd: '/src', workdir: 'rw' }).roots).toEqual([]);
  });
});
