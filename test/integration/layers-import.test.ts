// Import's own extractor against archives that try to write through links or twice.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { type Entry, tarEntry } from './image-fixtures.js';
import { tempDir } from './support.js';

let root: { path: string; remove: () => void };
beforeAll(() => {
  root = tempDir('sandbox-run-import-');
});
afterAll(() => root.remove());

const HEX = 'b'.repeat(64);
const T = `${HEX}/tree`;
const manifest = JSON.stringify({
  format: 'sandbox-run-layers',
  version: 1,
  layers: [{ digest: `sha256:${HEX}`, names: ['evil'], size: 0, created: '2020-01-01T00:00:00Z', source: { kind: 'import', file: 'x' } }],
});

let n = 0;
function archive(entries: Entry[]): string {
  const file = join(root.path, `a${++n}.tar`);
  writeFileSync(
    file,
    Buffer.concat([
      tarEntry({ path: 'manifest.json', data: manifest }),
      tarEntry({ path: `${T}/`, type: 'Directory', mode: 0o755 }),
      ...entries.map(tarEntry),
      Buffer.alloc(1024),
    ]),
  );
  return file;
}

describe('import extractor', () => {
  const outside = join(root?.path ?? '/nonexistent', 'outside');
  it.each([
    [
      'writing through an in-layer symlink',
      [
        { path: `${T}/sub/`, type: 'Directory', mode: 0o755 },
        { path: `${T}/s`, type: 'SymbolicLink', linkpath: 'sub' },
        { path: `${T}/s/x`, data: 'x' },
      ],
      /goes through the symlink/,
    ],
    [
      'an entry twice',
      [
        { path: `${T}/x`, data: '1' },
        { path: `${T}/x`, data: '2' },
      ],
      /appears twice/,
    ],
    [
      'a hard link to a file that comes later',
      [
        { path: `${T}/h`, type: 'Link', linkpath: `${T}/x` },
        { path: `${T}/x`, data: '1' },
      ],
      /no file extracted before it/,
    ],
    [
      'a hard link to a directory',
      [
        { path: `${T}/d/`, type: 'Directory', mode: 0o755 },
        { path: `${T}/h`, type: 'Link', linkpath: `${T}/d` },
      ],
      /no file extracted before it/,
    ],
    [
      'a file over a symlink',
      [
        { path: `${T}/s`, type: 'SymbolicLink', linkpath: 'x' },
        { path: `${T}/s`, data: 'x' },
      ],
      /appears twice/,
    ],
  ] as [string, Entry[], RegExp][])('refuses %s, leaving nothing', async (_what, entries, message) => {
    const store = await openStore({ dir: join(root.path, `store-${n}`) });
    const error = (await store.import(archive(entries)).catch((e: Error) => e)) as Error;
    expect(error.message).toMatch(/^refusing to import /);
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/\n/);
    expect(await store.list()).toEqual([]);
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
    expect(existsSync(outside)).toBe(false);
  });

  it('refuses a truncated or corrupted archive with one line instead of waiting forever', async () => {
    const store = await openStore({ dir: join(root.path, 'store-cut') });
    const src = join(root.path, 'cut-src');
    mkdirSync(src);
    writeFileSync(join(src, 'big'), randomBytes(4 << 20));
    await store.snapshot(src, { name: 'big' });
    for (const gz of ['', '.gz']) {
      const whole = join(root.path, `whole.tar${gz}`);
      await store.export('big', whole);
      const data = readFileSync(whole);
      const cut = join(root.path, `cut.tar${gz}`);
      writeFileSync(cut, data.subarray(0, data.length >> 1));
      const corrupt = join(root.path, `corrupt.tar${gz}`);
      writeFileSync(corrupt, Buffer.concat([data.subarray(0, data.length >> 2), randomBytes(4096), data.subarray((data.length >> 2) + 4096)]));
      const other = await openStore({ dir: join(root.path, `store-cut-into${gz}`) });
      for (const file of [cut, corrupt]) {
        const error = (await other.import(file).catch((e: Error) => e)) as Error;
        expect(error.message).toMatch(/^refusing to import /);
        expect(error.message).not.toMatch(/\n/);
      }
      expect(await other.list()).toEqual([]);
      expect(readdirSync(join(other.dir, 'tmp'))).toEqual([]);
    }
  });

  it('restores modes of read-only directories and files in them', async () => {
    const store = await openStore({ dir: join(root.path, 'store-ro') });
    const error = (await store
      .import(
        archive([
          { path: `${T}/ro/`, type: 'Directory', mode: 0o555 },
          { path: `${T}/ro/f`, data: 'f', mode: 0o444 },
        ]),
      )
      .catch((e: Error) => e)) as Error;
    // The manifest digest is made up, so the content is refused, but only after extracting it all.
    expect(error.message).toMatch(/digest mismatch/);
  });
});
