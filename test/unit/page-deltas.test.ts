// src/presets/postgres/page-deltas.ts against the real pg-page-cow.so: deltas and maps are made by ordinary tools (dd,
// truncate) running with the library preloaded on a plain directory, and what the module merges must be, byte for
// byte, what `cat` reads with the library preloaded. No overlay needed: the library works on any data directory.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  changedRelations,
  isPagesLayer,
  mergedBytes,
  mergePageDeltas,
  PAGE_BLOCK,
  parsePageMap,
  relationFiles,
  writeMerged,
} from '../../src/presets/postgres/page-deltas.js';

const ROOT = join(import.meta.dirname, '../..');
const LIBRARY = join(ROOT, 'helper/build/pg-page-cow.so');
const LAZY = join(ROOT, 'helper/build/pg-lazy-write.so');

describe('parsePageMap', () => {
  const map = (magic: bigint, size: number, limit: number, length = 4096 + 128) => {
    const bytes = Buffer.alloc(length);
    bytes.writeBigUInt64LE(magic, 0);
    bytes.writeBigUInt64LE(BigInt(size), 8);
    bytes.writeBigUInt64LE(BigInt(limit), 16);
    return bytes;
  };
  const MAGIC = 0x7067636f77763031n;

  it('reads sizes and the blocks whose bits are set, below the logical size only', () => {
    const bytes = map(MAGIC, 10 * PAGE_BLOCK + 5, 3 * PAGE_BLOCK);
    bytes[4096] = 0b1000_0101; // blocks 0, 2, 7
    bytes[4097] = 0b0000_1100; // blocks 10 (the partial last one), 11 (past the size: not counted)
    expect(parsePageMap(bytes)).toEqual({ size: 10 * PAGE_BLOCK + 5, lowerLimit: 3 * PAGE_BLOCK, blocks: [0, 2, 7, 10] });
  });

  it('refuses a bad magic, a short file and sizes the library never writes, saying which file', () => {
    expect(() => parsePageMap(map(0x1234n, 0, 0), '/x/1.map')).toThrow('/x/1.map: not a pg-page-cow block map (magic 0x1234, expected 0x7067636f77763031)');
    expect(() => parsePageMap(Buffer.alloc(10), 'm')).toThrow('m: not a pg-page-cow block map (10 bytes, a header is 24)');
    expect(() => parsePageMap(map(MAGIC, PAGE_BLOCK, 2 * PAGE_BLOCK))).toThrow(/lower limit 16384 is above the logical size 8192/);
    expect(() => parsePageMap(map(MAGIC, 2 ** 34, 0))).toThrow(/logical size 17179869184 is above 8589934592/);
    expect(() => parsePageMap(map(MAGIC, 2000 * PAGE_BLOCK, 0, 4100))).toThrow(/too short for the bitmap of 2000 blocks/);
  });
});

describe.skipIf(!existsSync(LIBRARY) || !existsSync(LAZY))('merged relation files against pg-page-cow.so (helper/build)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'page-deltas-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const env = { ...process.env, LD_PRELOAD: `${LIBRARY} ${LAZY}`, SANDBOX_RUN_PG_LAZY_DIR: data, SANDBOX_RUN_PG_PAGES_DIR: join(dir, 'pages') };
  const withLibrary = (command: string, args: string[], input?: Buffer) => execFileSync(command, args, { env, cwd: dir, input, maxBuffer: 1 << 28 });
  /** `dd` writing `bytes` at byte `offset` of a relation file, through the library (an O_WRONLY open, pwrite/write). */
  const write = (rel: string, offset: number, bytes: Buffer) =>
    withLibrary(
      'dd',
      [`of=data/${rel}`, `bs=${bytes.length}`, 'count=1', 'iflag=fullblock', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc', 'status=none'],
      bytes,
    );
  const pattern = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed * 7 + (i >> 13)) & 0xff));
  const seeded = {
    'base/1/123': pattern(6 * PAGE_BLOCK, 1),
    'base/1/123_fsm': pattern(3 * PAGE_BLOCK, 2),
    'base/1/124': pattern(4 * PAGE_BLOCK, 3),
    'global/1262': pattern(2 * PAGE_BLOCK, 4),
    'base/1/125': pattern(PAGE_BLOCK, 5), // read only: no delta
  };
  mkdirSync(join(data, 'base/1'), { recursive: true });
  mkdirSync(join(data, 'global'));
  writeFileSync(join(data, 'PG_VERSION'), '15\n');
  for (const [rel, bytes] of Object.entries(seeded)) writeFileSync(join(data, rel), bytes);

  it('lists what the library wrote and merges every file exactly as a process with the library reads it', async () => {
    write('base/1/123', 2 * PAGE_BLOCK, pattern(PAGE_BLOCK, 9)); // a whole block
    write('base/1/123', 4 * PAGE_BLOCK + 100, Buffer.from('partial block: the library copies the block in first'));
    write('base/1/123', 9 * PAGE_BLOCK, pattern(PAGE_BLOCK, 10)); // extends: blocks 6-8 read zeros
    write('base/1/123_fsm', 3, Buffer.from('x')); // inside block 0
    withLibrary('truncate', ['-s', String(PAGE_BLOCK + 1000), 'data/base/1/124']); // cuts into block 1: its head is copied in
    withLibrary('truncate', ['-s', String(5 * PAGE_BLOCK + 77), 'data/base/1/124']); // extends past the old end: zeros, not the lower file
    withLibrary('truncate', ['-s', '0', 'data/global/1262']);
    write('global/1262', PAGE_BLOCK, pattern(100, 11)); // block 0 zeros, block 1 a 100-byte tail
    write('base/1/200', 0, pattern(2 * PAGE_BLOCK + 10, 12)); // a file made in the sandbox (created empty under data/)
    withLibrary('cat', ['data/base/1/125']);

    expect(await isPagesLayer(dir)).toBe(true);
    const changed = await changedRelations(join(dir, 'pages'));
    expect(changed).toEqual([
      { rel: 'base/1/123', blocks: 3, size: 10 * PAGE_BLOCK },
      { rel: 'base/1/123_fsm', blocks: 1, size: 3 * PAGE_BLOCK },
      { rel: 'base/1/124', blocks: 1, size: 5 * PAGE_BLOCK + 77 },
      { rel: 'base/1/200', blocks: 3, size: 2 * PAGE_BLOCK + 10 },
      { rel: 'global/1262', blocks: 1, size: PAGE_BLOCK + 100 },
    ]);
    // The library never touched the files under data/.
    for (const [rel, bytes] of Object.entries(seeded)) expect(readFileSync(join(data, rel)).equals(bytes), rel).toBe(true);
    expect(readFileSync(join(data, 'base/1/200')).length).toBe(0);

    for (const { rel, size } of changed) {
      const seen = withLibrary('cat', [`data/${rel}`]);
      expect(seen.length, rel).toBe(size);
      const files = await relationFiles([dir], rel);
      const merged = mergedBytes(files!);
      expect(merged.equals(seen), rel).toBe(true);
      const out = join(dir, `merged-${rel.replace(/\//g, '_')}`);
      writeMerged(files!, out);
      expect(readFileSync(out).equals(seen), rel).toBe(true);
    }
    // Spot checks that the comparison is not vacuous: the writes are there, the truncated range reads zeros.
    const m124 = withLibrary('cat', ['data/base/1/124']);
    expect(m124.subarray(0, PAGE_BLOCK + 1000).equals(seeded['base/1/124'].subarray(0, PAGE_BLOCK + 1000))).toBe(true);
    expect(m124.subarray(PAGE_BLOCK + 1000).every((byte) => byte === 0)).toBe(true);
    expect(withLibrary('cat', ['data/base/1/123']).includes('partial block: the library copies the block in first')).toBe(true);
    expect(await relationFiles([dir], 'base/1/125')).toBeUndefined();
  });

  it('mergePageDeltas writes the merged files into the layer and removes pages/: plain readers then see what the library saw', async () => {
    const before = Object.fromEntries((await changedRelations(join(dir, 'pages'))).map(({ rel }) => [rel, withLibrary('cat', [`data/${rel}`])]));
    const merged = await mergePageDeltas(dir, []);
    expect(merged.map(({ rel }) => rel)).toEqual(Object.keys(before));
    expect(existsSync(join(dir, 'pages'))).toBe(false);
    for (const [rel, bytes] of Object.entries(before)) expect(readFileSync(join(data, rel)).equals(bytes), rel).toBe(true);
    expect(readFileSync(join(data, 'base/1/125')).equals(seeded['base/1/125'])).toBe(true);
    expect(readdirSync(join(data, 'base/1')).filter((name) => name.includes('merging'))).toEqual([]);
    expect(await isPagesLayer(dir)).toBe(false);
  });
});
