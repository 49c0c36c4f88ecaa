import { createWriteStream, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { Header, Pack, ReadEntry, extract } from 'tar';
import { SandboxError } from '../errors.js';
import { removeTree } from './fs-util.js';
import type { LayerMeta, LayerStore, Staging } from './store.js';
import { walkTree, OPAQUE_XATTR } from './tree.js';
import type { LayerInfo } from './types.js';

export interface ExportOptions {
  /** Only this layer, not its parents (the importing store must have them). */
  single?: boolean;
}

/** `manifest.json`, the archive's first entry. Layers are listed top first. */
export interface ArchiveManifest {
  format: 'sandbox-run-layers';
  version: 1;
  layers: (LayerMeta & { names: string[] })[];
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const HEX_TREE = /^([0-9a-f]{64})\/tree(?:\/(.*))?$/;

/** An entry made in memory (manifest, whiteout markers). */
function memoryEntry(path: string, data: Buffer, mtime: Date): ReadEntry {
  const header = new Header({ path, mode: 0o644, size: data.length, mtime, type: 'File', uid: 0, gid: 0 });
  const entry = new ReadEntry(header);
  if (data.length) entry.write(data);
  entry.end();
  return entry;
}

/**
 * Writes layers as one tar (gzipped for .gz/.tgz): `manifest.json`, then
 * each layer's files under `<hex>/tree/`, whiteouts as `.wh.NAME` and
 * opaque directories as `DIR/.wh..wh..opq` (OCI layer conventions).
 */
export async function exportLayers(store: LayerStore, nameOrDigest: string, file: string, options: ExportOptions): Promise<LayerInfo[]> {
  const top = await store.require(nameOrDigest);
  const chain: LayerInfo[] = [top];
  if (!options.single) for (let info = top; info.parent; ) chain.push((info = await store.require(info.parent)));
  await using lease = await store.lease(top.digest);
  void lease;
  const manifest: ArchiveManifest = {
    format: 'sandbox-run-layers',
    version: 1,
    layers: chain.map(({ path: _path, ...meta }) => meta),
  };
  const target = resolve(file);
  const aside = join(dirname(target), `.${basename(target)}.${process.pid}.part`);
  const pack = new Pack({ cwd: join(store.dir, 'layers'), portable: true, noDirRecurse: true, gzip: /\.(gz|tgz)$/.test(target) });
  const written = pipeline(pack, createWriteStream(aside));
  try {
    const now = new Date();
    pack.write(memoryEntry('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), now));
    for (const layer of [...chain].reverse()) {
      const hex = layer.digest.slice('sha256:'.length);
      for (const entry of await walkTree(layer.path)) {
        const path = entry.path ? `${hex}/tree/${entry.path}` : `${hex}/tree`;
        if (entry.type === 'whiteout') {
          pack.write(memoryEntry(posix.join(posix.dirname(path), WHITEOUT_PREFIX + posix.basename(path)), Buffer.alloc(0), entry.stats.mtime));
          continue;
        }
        pack.write(path);
        if (entry.opaque) pack.write(memoryEntry(`${path}/${OPAQUE_MARKER}`, Buffer.alloc(0), entry.stats.mtime));
      }
    }
    pack.end();
    await written;
    renameSync(aside, target);
  } catch (error) {
    rmSync(aside, { force: true });
    throw error;
  }
  return chain;
}

function reject(file: string, why: string): never {
  throw new SandboxError('BAD_OPTIONS', `refusing to import ${file}: ${why}`);
}

/** Why an archive entry is unsafe, or undefined. Paths are checked before anything is written. */
function unsafe(entry: ReadEntry): string | undefined {
  const path = entry.path.replace(/\/+$/, '');
  if (path.startsWith('/')) return `absolute path '${entry.path}'`;
  if (path.split('/').some((part) => part === '..')) return `path '${entry.path}' climbs out with '..'`;
  if (path === 'manifest.json') return entry.type === 'File' ? undefined : 'manifest.json is not a file';
  const match = HEX_TREE.exec(path);
  if (!match) return `unexpected path '${entry.path}' (expected manifest.json or <digest>/tree/...)`;
  if (!['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link'].includes(entry.type))
    return `'${entry.path}' is a ${entry.type} (device nodes, fifos and other special files are refused)`;
  if ((entry.mode ?? 0) & 0o6000) return `'${entry.path}' has the setuid or setgid bit`;
  const inTree = match[2] ?? '';
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? '';
    if (target.startsWith('/')) return `symlink '${entry.path}' points to the absolute path '${target}'`;
    const resolved = posix.normalize(posix.join(posix.dirname(`/${inTree}`), target));
    if (resolved.startsWith('/..') || posix.relative('/', resolved).startsWith('..')) return `symlink '${entry.path}' points out of the layer ('${target}')`;
  }
  if (entry.type === 'Link') {
    const target = entry.linkpath ?? '';
    const other = HEX_TREE.exec(target.replace(/\/+$/, ''));
    if (target.startsWith('/') || target.split('/').includes('..') || !other || other[1] !== match[1])
      return `hard link '${entry.path}' points out of the layer ('${target}')`;
  }
  return undefined;
}

/** Turns `.wh.NAME` files into 0/0 character devices and `.wh..wh..opq` into the opaque xattr. */
async function restoreWhiteouts(tree: string, file: string): Promise<void> {
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      if (name.startsWith(WHITEOUT_PREFIX)) {
        if (!st.isFile() || st.size !== 0) reject(file, `whiteout marker '${path}' is not an empty file`);
        await unlink(path);
        if (name === OPAQUE_MARKER) opaque.push(dir);
        else {
          const hidden = join(dir, name.slice(WHITEOUT_PREFIX.length));
          if (existsSync(hidden)) reject(file, `whiteout '${path}' hides a path of its own layer`);
          whiteouts.push(hidden);
        }
      } else if (st.isDirectory()) await visit(path);
    }
  };
  await visit(tree);
  // Node cannot mknod or set xattrs: one shell each for all of them. A 0/0
  // character device needs no privilege (Linux 5.8+).
  const loop = (command: string, paths: string[]) =>
    paths.length ? execa('/bin/sh', ['-c', `for f; do ${command} || exit 1; done`, 'sh', ...paths]) : undefined;
  await loop('mknod -m 0 -- "$f" c 0 0', whiteouts);
  await loop(`setfattr -n ${OPAQUE_XATTR} -v y -- "$f"`, opaque);
}

/**
 * Restores layers from an archive written by {@link exportLayers}, bottom
 * first. Everything is extracted into the store's `tmp/`, checked entry by
 * entry before it is written, and digested; only layers whose digest
 * matches the manifest are renamed into the store.
 */
export async function importLayers(store: LayerStore, file: string): Promise<LayerInfo[]> {
  const source = resolve(file);
  if (!existsSync(source)) throw new SandboxError('BAD_OPTIONS', `no such file: ${file}`);
  const staging = store.stage();
  try {
    let problem: string | undefined;
    await extract({
      file: source,
      cwd: staging.dir,
      strict: true,
      chmod: true,
      processUmask: 0,
      preserveOwner: false,
      filter: (_path, entry) => {
        const why = unsafe(entry as ReadEntry);
        problem ??= why;
        return !why && !problem;
      },
    }).catch((error: Error) => reject(source, error.message));
    if (problem) reject(source, problem);

    let manifest: ArchiveManifest;
    try {
      manifest = JSON.parse(readFileSync(join(staging.dir, 'manifest.json'), 'utf8')) as ArchiveManifest;
    } catch {
      reject(source, 'no readable manifest.json');
    }
    if (manifest.format !== 'sandbox-run-layers' || manifest.version !== 1 || !Array.isArray(manifest.layers))
      reject(source, 'manifest.json is not a sandbox-run layer manifest (version 1)');
    const listed = new Set(manifest.layers.map((layer) => String(layer.digest).replace(/^sha256:/, '')));
    for (const name of await readdir(staging.dir)) if (name !== 'manifest.json' && !listed.has(name)) reject(source, `layer ${name} is not in the manifest`);

    const imported: LayerInfo[] = [];
    for (const layer of [...manifest.layers].reverse()) {
      const hex = String(layer.digest).replace(/^sha256:/, '');
      if (!/^[0-9a-f]{64}$/.test(hex)) reject(source, `bad digest '${layer.digest}' in the manifest`);
      const dir = join(staging.dir, hex);
      if (!existsSync(join(dir, 'tree'))) reject(source, `layer ${layer.digest} has no files in the archive`);
      if (layer.parent && !listed.has(layer.parent.replace(/^sha256:/, '')) && !(await store.get(layer.parent)))
        reject(source, `layer ${layer.digest} needs parent ${layer.parent}, which is neither in the archive nor in the store`);
      await restoreWhiteouts(join(dir, 'tree'), source);
      const part: Staging = { dir, tree: join(dir, 'tree'), discard: () => removeTree(dir) };
      const names = (layer.names ?? []).filter((name) => typeof name === 'string');
      const info = await store
        .commit(part, { ...(layer.parent ? { parent: layer.parent } : {}), source: { kind: 'import', file: source } }, names[0], layer.digest)
        .catch((error: Error) => reject(source, error.message));
      for (const name of names.slice(1)) await store.tag(name, info.digest);
      imported.push(await store.require(info.digest));
    }
    return imported.reverse();
  } finally {
    staging.discard();
  }
}
