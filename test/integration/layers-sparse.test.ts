// Snapshots keep sparse files sparse (a PostgreSQL cluster or a disk image with holes stays small).
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { tempDir } from './support.js';

describe('snapshot of a sparse file', () => {
  it('copies the data, leaves the holes, and keeps size and content', async () => {
    const dir = tempDir('sandbox-run-sparse-');
    try {
      const src = join(dir.path, 'src');
      mkdirSync(src);
      const file = join(src, 'image');
      const fd = openSync(file, 'w');
      writeSync(fd, Buffer.from('head'), 0, 4, 0);
      writeSync(fd, Buffer.from('middle'), 0, 6, 32 << 20);
      writeSync(fd, Buffer.from('tail'), 0, 4, (64 << 20) - 4);
      closeSync(fd);
      expect(lstatSync(file).blocks * 512).toBeLessThan(1 << 20); // the filesystem made holes

      const store = await openStore({ dir: join(dir.path, 'store') });
      const info = await store.snapshot(src, { name: 'sparse' });
      const copy = lstatSync(join(info.path, 'image'));
      expect(copy.size).toBe(64 << 20);
      expect(copy.blocks * 512).toBeLessThan(4 << 20);
      expect(readFileSync(join(info.path, 'image')).equals(readFileSync(file))).toBe(true);
    } finally {
      dir.remove();
    }
  });
});
