// Property-based fuzzing of `import`: archives written by the real export
// (a parent and a child with whiteouts and an opaque dir), mutated entry by
// entry (paths, types, modes, link targets, manifest.json) and byte by byte
// (headers, truncation, spliced blocks, concatenation, gzip), imported into
// a fresh store. Whatever the input, import either succeeds with layers that
// re-digest and hold nothing the policy refuses, or fails with one line;
// either way nothing is left behind and nothing outside the store changes.
//   npm run fuzz:import      (FUZZ_RUNS=N for the count, FUZZ_SEED=S to replay)
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LayerInfo, type LayerStore, openStore, SandboxError } from '../../src/index.js';
import { treeDigest as layerDigest } from '../../src/layers/tree.js';
import { markOpaque } from '../../src/layers/xattr.js';
import { removeTree } from '../../src/process/sweep.js';
import { BLOCK, FIELDS, fixChecksum, headerOffsets, readRecords, type TarRecord, writeRecords } from './fuzz-tar.js';
import { treeDigest as dirDigest, tempDir } from './support.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
/** One import of a few KB takes tens of ms; far longer means it waits for something that never comes. */
const IMPORT_TIMEOUT = 20_000;

let root: { path: string; remove: () => void };
let sentinel: string;
let sentinelDigest: string;
let scratch: string;
let previousCwd: string;
const bases = new Map<Base, Buffer>();
const sourceDigests = new Map<Base, string[]>();
let seedArchive: string;
/** What the fuzz root holds besides the case dir: nothing may be added. */
let rootEntries: string[];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

type Base = 'stack' | 'top' | 'parent';

/** The parent: files, dirs (one read-only), symlinks (one dangling), hard links, odd names. */
function parentTree(dir: string): void {
  mkdirSync(join(dir, 'sub/deeper'), { recursive: true });
  mkdirSync(join(dir, 'ro'));
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'sub/b.txt'), 'b\n');
  writeFileSync(join(dir, 'sub/deeper/c.bin'), Buffer.alloc(3000, 7));
  writeFileSync(join(dir, 'secret'), 'only me\n', { mode: 0o600 });
  writeFileSync(join(dir, 'ro/f'), 'f', { mode: 0o444 });
  writeFileSync(join(dir, 'name with spaces ü'), 'u');
  symlinkSync('sub/b.txt', join(dir, 'link'));
  symlinkSync('nowhere', join(dir, 'dangling'));
  symlinkSync('../a.txt', join(dir, 'sub/up'));
  linkSync(join(dir, 'a.txt'), join(dir, 'hard'));
  chmodSync(join(dir, 'ro'), 0o555);
}

async function buildStack(store: LayerStore, dir: string): Promise<void> {
  const src = join(dir, 'parent-src');
  mkdirSync(src);
  parentTree(src);
  const parent = await store.snapshot(src, { name: 'parent' });
  // The child as a build would leave it: whiteouts (0/0 devices, one in a
  // read-only dir) and an opaque dir, committed from a staged tree.
  const staging = store.stage();
  const tree = staging.tree;
  mkdirSync(join(tree, 'sub'), { recursive: true });
  mkdirSync(join(tree, 'ro'));
  writeFileSync(join(tree, 'sub/new'), 'new\n');
  writeFileSync(join(tree, 'top.txt'), 'top\n');
  await execa('mknod', ['-m', '0', join(tree, 'a.txt'), 'c', '0', '0']);
  await execa('mknod', ['-m', '0', join(tree, 'ro/f'), 'c', '0', '0']);
  await markOpaque(join(tree, 'sub'));
  chmodSync(join(tree, 'ro'), 0o555);
  await store.commit(staging, { parent: parent.digest, source: { kind: 'snapshot', path: 'fuzz', method: 'copy' } }, 'top');
}

beforeAll(async () => {
  root = tempDir('sandbox-run-fuzz-import-');
  sentinel = join(root.path, 'sentinel');
  mkdirSync(join(sentinel, 'inner'), { recursive: true });
  writeFileSync(join(sentinel, 'keep'), 'untouched\n');
  sentinelDigest = dirDigest(sentinel);
  scratch = join(root.path, 'cwd');
  mkdirSync(scratch);
  previousCwd = process.cwd();
  process.chdir(scratch); // relative paths an import might write land here, where they are seen
  process.on('unhandledRejection', onUnhandled);
  const source = await openStore({ dir: join(root.path, 'source') });
  await buildStack(source, root.path);
  for (const [base, name, single] of [
    ['stack', 'top', false],
    ['top', 'top', true],
    ['parent', 'parent', false],
  ] as const) {
    const file = join(root.path, `${base}.tar`);
    const layers = await source.export(name, file, { single });
    bases.set(base, readFileSync(file));
    sourceDigests.set(
      base,
      layers.map((layer) => layer.digest),
    );
  }
  seedArchive = join(root.path, 'parent.tar');
  rootEntries = readdirSync(root.path).sort();
}, 60_000);

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  if (previousCwd) process.chdir(previousCwd);
  if (root) removeTree(root.path);
});

// ---- generators ----------------------------------------------------------

const OTHER_HEX = 'c'.repeat(64);
const fragment = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'x',
      'sub/new',
      'sub',
      'a.txt',
      'link',
      'dangling',
      'ro/f',
      'ro',
      '.wh.a.txt',
      '.wh.dangling',
      '.wh.link',
      '.wh..wh..opq',
      'sub/.wh.b.txt',
      '.wh.',
      '',
      '.',
      './x',
      'x/',
      'x//y',
      '../x',
      '../../../../x',
      'sub/../../x',
      'sub/../..',
      '..',
      'dir\nname',
      'tab\tname',
      'ü/名',
      'a'.repeat(150),
      `${'d/'.repeat(60)}f`,
      'manifest.json',
      'SENTINEL/evil',
    ),
  },
  fc.string({ maxLength: 12 }),
  fc.stringMatching(/^[a-z./]{1,12}$/),
);
/** Where a path points: into a layer's tree, another (unlisted) layer, the archive root, or an absolute path. */
const pathArb = fc.record({ where: fc.constantFrom('tree', 'tree', 'tree', 'other', 'bare', 'abs'), layer: fc.nat(), rel: fragment });
type PathSpec = { where: string; layer: number; rel: string };
const targetArb = fc.oneof(
  fc.record({
    rel: fc.oneof(
      fragment,
      fc.constantFrom('../../../../..', '/etc/passwd', 'SENTINEL', 'SENTINEL/keep', 'sub/..', 'sub/up/..', 'sub/up/../..', 'nowhere/../..'),
    ),
  }),
  fc.record({ path: pathArb }),
);
type TargetSpec = { rel: string } | { path: PathSpec };
const typeArb = fc.constantFrom(
  'File',
  'Directory',
  'SymbolicLink',
  'Link',
  'CharacterDevice',
  'BlockDevice',
  'FIFO',
  'ContiguousFile',
  'OldFile',
  'SparseFile',
  'GNUDumpDir',
);
const modeArb = fc.oneof(fc.constantFrom(0o4755, 0o2755, 0o6777, 0o1777, 0, 0o777, 0o7777, 0o555, 0o200, 0o100644), fc.nat(0o7777));
const digestValue = fc.oneof(
  fc.constantFrom<unknown>('', 'sha256:', 'sha256:xyz', null, 7, {}, 'SELF_BARE', 'SELF_UPPER', 'OTHER'),
  fc.stringMatching(/^sha256:[0-9a-f]{64}$/),
);
const manifestArb = fc.oneof(
  fc.record({
    kind: fc.constant('text' as const),
    text: fc.constantFrom(
      'null',
      '1',
      '"x"',
      '[]',
      '{}',
      '',
      '{"format":"sandbox-run-layers","version":1}',
      ...['[null]', '[1]', '"x"', '[{}]', '[[]]', '{}'].map((layers) => `{"format":"sandbox-run-layers","version":1,"layers":${layers}}`),
    ),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('digest' as const), layer: fc.nat(), value: digestValue }),
  fc.record({ kind: fc.constant('parent' as const), layer: fc.nat(), value: fc.oneof(digestValue, fc.constantFrom<unknown>('SELF', 'DELETE')) }),
  fc.record({
    kind: fc.constant('names' as const),
    layer: fc.nat(),
    value: fc.oneof(
      fc.constantFrom<unknown>([], ['ok'], ['..'], ['a/../b'], ['sha256:abc'], ['bad name'], 'str', [1], [''], ['x'.repeat(200)], ['dup', 'dup'], null),
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    ),
  }),
  fc.record({ kind: fc.constantFrom('drop' as const, 'dup' as const), layer: fc.nat() }),
  fc.record({ kind: fc.constantFrom('reverse' as const, 'parentless' as const) }),
  fc.record({
    kind: fc.constant('field' as const),
    key: fc.constantFrom('format', 'version', 'layers'),
    value: fc.constantFrom<unknown>(undefined, 2, '1', 'other', null, []),
  }),
);
type ManifestEdit = typeof manifestArb extends fc.Arbitrary<infer T> ? T : never;

const editArb = fc.oneof(
  fc.record({ kind: fc.constant('path' as const), at: fc.nat(), path: pathArb }),
  fc.record({ kind: fc.constant('type' as const), at: fc.nat(), type: typeArb }),
  fc.record({ kind: fc.constant('mode' as const), at: fc.nat(), mode: modeArb }),
  fc.record({ kind: fc.constant('link' as const), at: fc.nat(), target: targetArb }),
  fc.record({ kind: fc.constant('data' as const), at: fc.nat(), data: fc.uint8Array({ maxLength: 600 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    path: pathArb,
    type: typeArb,
    mode: modeArb,
    target: targetArb,
    data: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.record({ kind: fc.constantFrom('remove' as const, 'whiteout' as const, 'opaque' as const), at: fc.nat() }),
  fc.record({ kind: fc.constantFrom('duplicate' as const, 'move' as const), at: fc.nat(), to: fc.nat() }),
  // A chain of in-tree symlinks: `d/../l -> ../..` (the root), then `x -> d/../l/../..`: each target stays in the tree read alone.
  fc.record({ kind: fc.constant('escape' as const), layer: fc.nat(), depth: fc.integer({ min: 1, max: 5 }), first: fc.boolean(), at: fc.nat() }),
  fc.record({ kind: fc.constant('root' as const), layer: fc.nat(), type: typeArb }),
  fc.record({ kind: fc.constant('manifest' as const), edit: manifestArb }),
);
type Edit = typeof editArb extends fc.Arbitrary<infer T> ? T : never;

const headerValue = fc.oneof(
  fc.constantFrom(
    '77777777777\0',
    '00000000000\0',
    '-1',
    '\x80\0\0\0\0\0\0\0\0\0\x01\0',
    '\xff'.repeat(12),
    '3',
    '4',
    '6',
    '7',
    'L',
    'K',
    'x',
    'g',
    'S',
    'V',
    'Z',
    '\0',
    'ustar\0',
    '../../x\0',
    '/etc/x\0',
    '0000644\0',
    '0004755\0',
  ),
  fc.string({ maxLength: 12 }),
);
const rawArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({
    kind: fc.constant('field' as const),
    header: fc.nat(),
    field: fc.constantFrom(...(Object.keys(FIELDS) as (keyof typeof FIELDS)[])),
    value: headerValue,
    fix: fc.boolean(),
  }),
  fc.record({ kind: fc.constantFrom('truncate' as const, 'dropBlock' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('dupBlock' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({
    kind: fc.constant('splice' as const),
    base: fc.constantFrom<Base>('stack', 'top', 'parent'),
    at: fc.nat(),
    to: fc.nat(),
    blocks: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({ kind: fc.constant('concat' as const), base: fc.constantFrom<Base>('stack', 'top', 'parent') }),
);
type Raw = typeof rawArb extends fc.Arbitrary<infer T> ? T : never;

const caseArb = fc.record({
  base: fc.constantFrom<Base>('stack', 'stack', 'top', 'parent'),
  /** The store holds the parent already (the child alone then imports). */
  seeded: fc.boolean(),
  edits: fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 4, arbitrary: fc.array(editArb, { minLength: 1, maxLength: 4 }) }),
  /** Recompute manifest digests after the edits, as an attacker would, so checks past the digest are reached. */
  fixDigests: fc.boolean(),
  raw: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(rawArb, { minLength: 1, maxLength: 3 }) }),
  gzip: fc.boolean(),
  gzRaw: fc.oneof(
    { weight: 4, arbitrary: fc.constant([]) },
    {
      weight: 1,
      arbitrary: fc.array(
        fc.oneof(
          rawArb.filter((raw) => ['flip', 'bytes', 'truncate'].includes(raw.kind)),
          fc.record({ kind: fc.constant('gzconcat' as const), base: fc.constantFrom<Base>('stack', 'parent') }),
        ),
        { maxLength: 2 },
      ),
    },
  ),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

// ---- applying mutations --------------------------------------------------

const HEX_TREE = /^([0-9a-f]{64})\/tree(\/|$)/;
const pick = <T>(list: readonly T[], n: number): T | undefined => (list.length ? list[n % list.length] : undefined);

function hexesOf(records: readonly TarRecord[]): string[] {
  return [...new Set(records.flatMap((record) => HEX_TREE.exec(record.path)?.[1] ?? []))];
}

function realizePath(spec: PathSpec, hexes: readonly string[]): string {
  const rel = spec.rel.replace(/^SENTINEL/, sentinel);
  if (spec.where === 'bare') return rel;
  if (spec.where === 'abs') return join(sentinel, rel);
  const hex = spec.where === 'other' ? OTHER_HEX : (pick(hexes, spec.layer) ?? OTHER_HEX);
  return rel ? `${hex}/tree/${rel}` : `${hex}/tree`;
}

function realizeTarget(spec: TargetSpec, hexes: readonly string[]): string {
  return 'rel' in spec ? spec.rel.replace(/^SENTINEL/, sentinel) || '.' : realizePath(spec.path, hexes);
}

function editManifest(text: string, edit: ManifestEdit): string {
  if (edit.kind === 'text') return edit.text;
  if (edit.kind === 'truncate') return text.slice(0, edit.at % (text.length + 1));
  const manifest = JSON.parse(text) as { layers: Record<string, unknown>[] } & Record<string, unknown>;
  const layers = manifest.layers;
  const at = 'layer' in edit ? edit.layer % layers.length : 0;
  const layer = layers[at]!;
  const resolve = (value: unknown): unknown => {
    const self = String(layer.digest);
    if (value === 'SELF') return self;
    if (value === 'SELF_BARE') return self.replace(/^sha256:/, '');
    if (value === 'SELF_UPPER') return self.toUpperCase();
    if (value === 'OTHER') return layers[(at + 1) % layers.length]!.digest;
    return value;
  };
  if (edit.kind === 'digest') layer.digest = resolve(edit.value);
  else if (edit.kind === 'parent') {
    if (edit.value === 'DELETE') delete layer.parent;
    else layer.parent = resolve(edit.value);
  } else if (edit.kind === 'names') layer.names = edit.value;
  else if (edit.kind === 'drop') layers.splice(at, 1);
  else if (edit.kind === 'dup') layers.splice(at, 0, structuredClone(layer));
  else if (edit.kind === 'reverse') layers.reverse();
  else if (edit.kind === 'parentless') for (const each of layers) delete each.parent;
  else if (edit.kind === 'field') (manifest as Record<string, unknown>)[edit.key] = edit.value;
  return JSON.stringify(manifest);
}

function applyEdit(records: TarRecord[], edit: Edit): void {
  const hexes = hexesOf(records);
  const at = records.length ? ('at' in edit ? edit.at : 0) % records.length : 0;
  const record = records[at];
  const mtime = new Date(0);
  switch (edit.kind) {
    case 'path':
      if (record) record.path = realizePath(edit.path, hexes);
      return;
    case 'type':
      if (record) record.type = edit.type;
      if (record && /Link$/.test(edit.type)) record.linkpath ??= 'a.txt';
      if (record && edit.type !== 'File') record.data = Buffer.alloc(0);
      return;
    case 'mode':
      if (record) record.mode = edit.mode;
      return;
    case 'link':
      if (record && /Link$/.test(record.type)) record.linkpath = realizeTarget(edit.target, hexes);
      return;
    case 'data':
      if (record && ['File', 'OldFile', 'ContiguousFile'].includes(record.type)) record.data = Buffer.from(edit.data);
      return;
    case 'insert': {
      const linked = /Link$/.test(edit.type);
      const file = ['File', 'OldFile', 'ContiguousFile'].includes(edit.type);
      records.splice(at + 1, 0, {
        path: realizePath(edit.path, hexes),
        type: edit.type,
        mode: edit.mode,
        mtime,
        data: file ? Buffer.from(edit.data) : Buffer.alloc(0),
        ...(linked ? { linkpath: realizeTarget(edit.target, hexes) } : {}),
      });
      return;
    }
    case 'remove':
      records.splice(at, 1);
      return;
    case 'duplicate':
      if (record) records.splice(edit.to % (records.length + 1), 0, structuredClone(record));
      return;
    case 'move':
      if (record) records.splice(edit.to % records.length, 0, ...records.splice(at, 1));
      return;
    case 'whiteout':
    case 'opaque': {
      if (!record || !HEX_TREE.test(record.path)) return;
      const path = record.path.replace(/\/+$/, '');
      const marker =
        edit.kind === 'whiteout'
          ? posix.join(posix.dirname(path), `.wh.${posix.basename(path)}`)
          : posix.join(record.type === 'Directory' ? path : posix.dirname(path), '.wh..wh..opq');
      records.splice(at + 1, 0, { path: marker, type: 'File', mode: 0o644, mtime, data: Buffer.alloc(0) });
      return;
    }
    case 'escape': {
      const hex = pick(hexes, edit.layer) ?? OTHER_HEX;
      const deep = 'd/'.repeat(edit.depth);
      const loop = {
        path: `${hex}/tree/${deep}l`,
        type: 'SymbolicLink',
        mode: 0o777,
        mtime,
        data: Buffer.alloc(0),
        linkpath: '../'.repeat(edit.depth).slice(0, -1),
      };
      // Lexically `d/…/l/..…` climbs back to the root; really, l is the root and each `..` goes one above it.
      const out = {
        path: `${hex}/tree/x${edit.depth}`,
        type: 'SymbolicLink',
        mode: 0o777,
        mtime,
        data: Buffer.alloc(0),
        linkpath: `${deep}l/${'../'.repeat(edit.depth + 1)}sentinel`,
      };
      records.splice(Math.max(1, at), 0, ...(edit.first ? [loop, out] : [out, loop]));
      return;
    }
    case 'root': {
      const hex = pick(hexes, edit.layer);
      const rootRecord = records.find((each) => each.path.replace(/\/+$/, '') === `${hex}/tree`);
      if (!rootRecord) return;
      rootRecord.path = `${hex}/tree`;
      rootRecord.type = edit.type;
      if (/Link$/.test(edit.type)) rootRecord.linkpath = edit.type === 'Link' ? `${hex}/tree/a.txt` : '.';
      return;
    }
    case 'manifest': {
      const manifest = records.find((each) => each.path === 'manifest.json');
      if (!manifest) return;
      try {
        manifest.data = Buffer.from(editManifest(manifest.data.toString('utf8'), edit.edit));
      } catch {
        // an earlier edit left text that is not JSON: keep it
      }
      return;
    }
  }
}

function applyRaw(input: Buffer, raw: Raw | { kind: 'gzconcat'; base: Base }): Buffer {
  const tar = Buffer.from(input);
  const at = tar.length ? ('at' in raw ? raw.at : 0) % tar.length : 0;
  const blocks = Math.max(1, Math.floor(tar.length / BLOCK));
  switch (raw.kind) {
    case 'flip':
      if (tar.length) tar[at]! ^= 1 << raw.bit;
      return tar;
    case 'bytes':
      Buffer.from(raw.bytes).copy(tar, at);
      return tar;
    case 'field': {
      const offset = pick(headerOffsets(tar), raw.header);
      if (offset === undefined) return tar;
      const [start, length] = FIELDS[raw.field];
      tar.fill(0, offset + start, offset + start + length);
      Buffer.from(raw.value, 'latin1')
        .subarray(0, length)
        .copy(tar, offset + start);
      if (raw.fix) fixChecksum(tar, offset);
      return tar;
    }
    case 'truncate':
      return tar.subarray(0, at);
    case 'dropBlock': {
      const block = (at >> 9) * BLOCK;
      return Buffer.concat([tar.subarray(0, block), tar.subarray(block + BLOCK)]);
    }
    case 'dupBlock': {
      const block = tar.subarray((at >> 9) * BLOCK, (at >> 9) * BLOCK + BLOCK);
      const to = (raw.to % blocks) * BLOCK;
      return Buffer.concat([tar.subarray(0, to), block, tar.subarray(to)]);
    }
    case 'splice': {
      const other = bases.get(raw.base)!;
      const from = (raw.to % Math.floor(other.length / BLOCK)) * BLOCK;
      const to = (at >> 9) * BLOCK;
      return Buffer.concat([tar.subarray(0, to), other.subarray(from, from + raw.blocks * BLOCK), tar.subarray(to + raw.blocks * BLOCK)]);
    }
    case 'concat':
      return Buffer.concat([tar, bases.get(raw.base)!]);
    case 'gzconcat':
      return Buffer.concat([tar, gzipSync(bases.get(raw.base)!)]);
  }
}

/** The archive bytes of a case, with `renames` (hex -> hex) applied to every path and the manifest. */
function build(testCase: Case, renames: Map<string, string>): Buffer {
  let records = structuredClone(readRecords(bases.get(testCase.base)!)).map((record) => ({ ...record, data: Buffer.from(record.data) }));
  for (const edit of testCase.edits) applyEdit(records, edit);
  const rename = (text: string) => [...renames].reduce((out, [from, to]) => out.replaceAll(from, to), text);
  records = records.map((record) => ({
    ...record,
    path: rename(record.path),
    ...(record.linkpath !== undefined ? { linkpath: rename(record.linkpath) } : {}),
    data: record.path === 'manifest.json' ? Buffer.from(rename(record.data.toString('utf8'))) : record.data,
  }));
  let bytes = writeRecords(records);
  for (const raw of testCase.raw) bytes = applyRaw(bytes, raw);
  if (testCase.gzip) {
    bytes = gzipSync(bytes);
    for (const raw of testCase.gzRaw) bytes = applyRaw(bytes, raw);
  }
  return bytes;
}

// ---- the property ----------------------------------------------------------

/** Whether the symlink at `rel` resolves above `tree`, following the tree's own symlinks (missing parts: lexically). */
function leavesTree(tree: string, rel: string): boolean {
  const stack = posix
    .dirname(rel)
    .split('/')
    .filter((part) => part && part !== '.');
  const parts = readlinkSync(join(tree, rel)).split('/');
  if (parts[0] === '') return true;
  for (let hops = 0; parts.length; ) {
    const part = parts.shift()!;
    if (!part || part === '.') continue;
    if (part === '..') {
      if (!stack.length) return true;
      stack.pop();
      continue;
    }
    const path = join(tree, ...stack, part);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      if (++hops > 40) return false; // ELOOP: resolves nowhere
      const target = readlinkSync(path);
      if (target.startsWith('/')) return true;
      parts.unshift(...target.split('/'));
    } else stack.push(part);
  }
  return false;
}

/** What in an imported tree breaks the import policy. */
function policyViolations(tree: string): string[] {
  const problems: string[] = [];
  if (!lstatSync(tree).isDirectory()) return ['the tree is not a directory'];
  const inodes = new Map<number, { nlink: number; paths: number }>();
  const walk = (rel: string) => {
    const st = lstatSync(join(tree, rel));
    if (st.mode & 0o6000) problems.push(`${rel}: setuid/setgid`);
    if (st.isBlockDevice() || st.isFIFO() || st.isSocket() || (st.isCharacterDevice() && st.rdev !== 0)) problems.push(`${rel}: special file`);
    if (st.isSymbolicLink() && leavesTree(tree, rel)) problems.push(`${rel}: symlink resolves outside (${readlinkSync(join(tree, rel))})`);
    if (st.isFile()) {
      const seen = inodes.get(st.ino) ?? { nlink: st.nlink, paths: 0 };
      seen.paths++;
      inodes.set(st.ino, seen);
    }
    if (st.isDirectory()) for (const name of readdirSync(join(tree, rel))) walk(rel ? `${rel}/${name}` : name);
  };
  walk('');
  for (const [ino, { nlink, paths }] of inodes) if (nlink !== paths) problems.push(`inode ${ino}: ${nlink} links, ${paths} in the tree (a hard link out)`);
  return problems;
}

interface Outcome {
  error?: Error;
  imported?: LayerInfo[];
}

const describeLayers = async (store: LayerStore) => (await store.list()).map((info) => `${info.digest} ${info.names.join(',')}`).sort();

/** One import of `bytes` into a fresh store, checking everything the property promises. */
async function importChecked(bytes: Buffer, gzip: boolean, seeded: boolean, label: string): Promise<Outcome> {
  const caseDir = join(root.path, 'case');
  removeTree(caseDir); // layers hold read-only dirs, which a plain rm cannot empty as a non-root user
  mkdirSync(caseDir);
  const store = await openStore({ dir: join(caseDir, 'store') });
  if (seeded) await store.import(seedArchive);
  const before = await describeLayers(store);
  const tagsBefore = existsSync(join(store.dir, 'tags.json')) ? readFileSync(join(store.dir, 'tags.json'), 'utf8') : '';
  const input = join(caseDir, gzip ? 'input.tar.gz' : 'input.tar');
  writeFileSync(input, bytes);

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`import hung for ${IMPORT_TIMEOUT} ms`)), IMPORT_TIMEOUT);
  });
  const outcome: Outcome = await Promise.race([
    store.import(input).then(
      (imported) => ({ imported }),
      (error: Error) => ({ error }),
    ),
    timeout,
  ]).finally(() => clearTimeout(timer));
  await new Promise((resolve) => setImmediate(resolve)); // let stray rejections surface

  expect(unhandled, `${label}: unhandled rejections`).toEqual([]);
  expect(readdirSync(join(store.dir, 'tmp')), `${label}: leftovers in tmp/`).toEqual([]);
  expect(readdirSync(caseDir).sort(), `${label}: files beside the store`).toEqual([gzip ? 'input.tar.gz' : 'input.tar', 'store']);
  expect(readdirSync(root.path).sort(), `${label}: files beside the case`).toEqual(['case', ...rootEntries]);
  expect(readdirSync(scratch), `${label}: files in the working directory`).toEqual([]);
  expect(dirDigest(sentinel), `${label}: the sentinel changed`).toBe(sentinelDigest);
  // Every directory in layers/ is a whole layer, and every one is listed.
  const listed = (await store.list()).map((info) => info.digest.slice('sha256:'.length)).sort();
  expect(readdirSync(join(store.dir, 'layers')).sort(), `${label}: layers/ against list()`).toEqual(listed);
  for (const hex of listed)
    expect(readdirSync(join(store.dir, 'layers', hex)).sort(), `${label}: layer ${hex}`).toEqual(expect.arrayContaining(['meta.json', 'tree']));

  if (outcome.error) {
    const { error } = outcome;
    expect(error, `${label}: ${error.stack}`).toBeInstanceOf(SandboxError);
    expect(error.message, label).toMatch(/^refusing to import \S.*: \S/);
    expect(error.message, `${label}: more than one line`).not.toMatch(/[\n\r]/);
    expect(await describeLayers(store), `${label}: a failed import changed the layers`).toEqual(before);
    const tagsAfter = existsSync(join(store.dir, 'tags.json')) ? readFileSync(join(store.dir, 'tags.json'), 'utf8') : '';
    expect(tagsAfter, `${label}: a failed import changed the tags`).toBe(tagsBefore);
  } else {
    const after = (await store.list()).map((info) => info.digest);
    for (const kept of before) expect(after, `${label}: a layer went away`).toContain(kept.split(' ')[0]);
    for (const layer of outcome.imported!) {
      const info = (await store.get(layer.digest))!;
      expect(info, `${label}: imported ${layer.digest} is not in the store`).toBeDefined();
      const { digest } = await layerDigest(info.path, undefined, info.parent ? { parent: info.parent } : {});
      expect(digest, `${label}: ${info.digest} re-digests differently`).toBe(info.digest);
      expect(policyViolations(info.path), `${label}: ${info.digest}`).toEqual([]);
    }
  }
  return outcome;
}

const MISMATCH = /digest mismatch: the manifest says sha256:([0-9a-f]{64}), the content is sha256:([0-9a-f]{64})/;

async function runCase(testCase: Case): Promise<void> {
  const label = JSON.stringify(testCase, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value));
  const renames = new Map<string, string>();
  // Up to one digest fix per layer, top and parent.
  for (let attempt = 0; attempt < 3; attempt++) {
    const outcome = await importChecked(build(testCase, renames), testCase.gzip, testCase.seeded, `${label} (attempt ${attempt})`);
    const pristine = !testCase.edits.length && !testCase.raw.length && !(testCase.gzip && testCase.gzRaw.length);
    if (pristine && (testCase.base !== 'top' || testCase.seeded)) {
      // The unmutated export must import (the child alone needs its parent in the store), with the source's digests.
      expect(outcome.error?.message, label).toBeUndefined();
      expect(
        outcome.imported!.map((layer) => layer.digest),
        label,
      ).toEqual(sourceDigests.get(testCase.base));
    }
    const mismatch = outcome.error && MISMATCH.exec(outcome.error.message);
    if (!testCase.fixDigests || !mismatch || renames.has(mismatch[1]!)) return;
    renames.set(mismatch[1]!, mismatch[2]!);
  }
}

describe('import fuzzing', () => {
  it(`imports ${RUNS} mutated archives: valid layers or one line, nothing left behind`, { timeout: 60_000 + RUNS * 3_000 }, async () => {
    const started = Date.now();
    await fc.assert(fc.asyncProperty(caseArb, runCase), { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) });
    console.log(`import fuzz: ${RUNS} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
