import { existsSync, lstatSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { chmod, lstat, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import type { ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { removeTree } from '../process/sweep.js';
import { symlinkLeaves } from './confine.js';
import { addLayerTree, OPAQUE_MARKER, WHITEOUT_PREFIX } from './layer-tar.js';
import { checkName, type LayerMeta, type LayerStore, type Staging } from './store.js';
import { extractChecked } from './tar-reader.js';
import { TarWriter } from './tar-writer.js';
import { treeDigest } from './tree.js';
import type { LayerInfo } from './types.js';
import { makeWhiteouts } from './whiteout.js';
import { markOpaque } from './xattr.js';

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

const HEX_TREE = /^([0-9a-f]{64})\/tree(?:\/(.*))?$/;

/**
 * Writes layers as one tar (gzipped for .gz/.tgz): `manifest.json`, then
 * each layer's files under `<hex>/tree/`, whiteouts as `.wh.NAME` and
 * opaque directories as `DIR/.wh..wh..opq` (OCI layer conventions).
 */
export async function exportLayers(store: LayerStore, nameOrDigest: string, file: string, options: ExportOptions): Promise<LayerInfo[]> {
  const top = await store.require(nameOrDigest);
  const chain: LayerInfo[] = [top];
  for (let info = top; !options.single && info.parent; ) {
    info = await store.require(info.parent);
    chain.push(info);
  }
  await using lease = await store.lease(top.digest);
  void lease;
  const manifest: ArchiveManifest = {
    format: 'sandbox-run-layers',
    version: 1,
    layers: chain.map(({ path: _path, ...meta }) => meta),
  };
  const target = resolve(file);
  const aside = join(dirname(target), `.${basename(target)}.${process.pid}.part`);
  const writer = new TarWriter(aside, /\.(gz|tgz)$/.test(target));
  try {
    await writer.add({ path: 'manifest.json', type: 'File', mode: 0o644, mtime: new Date(), data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) });
    for (const layer of [...chain].reverse()) {
      const hex = layer.digest.slice('sha256:'.length);
      await addLayerTree(writer, layer, `${hex}/tree`);
    }
    await writer.end();
    renameSync(aside, target);
  } catch (error) {
    rmSync(aside, { force: true });
    throw error;
  }
  return chain;
}

function reject(file: string, why: string): never {
  // Archive paths may hold newlines and other control characters: the message stays one line.
  const line = `refusing to import ${file}: ${why}`.replace(/[\u0000-\u001f\u007f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
  throw new SandboxError('BAD_OPTIONS', line);
}

/** True if `target`, taken relative to directory `from` (both inside a tree), leaves the tree. */
export function climbsOut(from: string, target: string): boolean {
  let depth = from === '.' || from === '' ? 0 : from.split('/').filter((part) => part && part !== '.').length;
  for (const part of target.split('/')) {
    if (part === '..') depth--;
    else if (part && part !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** Why an archive entry is unsafe, or undefined. Paths are checked before anything is written. */
export function unsafe(entry: ReadEntry): string | undefined {
  const path = entry.path.replace(/\/+$/, '');
  if (path.startsWith('/')) return `absolute path '${entry.path}'`;
  if (path.split('/').some((part) => part === '..')) return `path '${entry.path}' climbs out with '..'`;
  if (path === 'manifest.json') return entry.type === 'File' ? undefined : 'manifest.json is not a file';
  const match = HEX_TREE.exec(path);
  if (!match) return `unexpected path '${entry.path}' (expected manifest.json or <digest>/tree/...)`;
  if (!['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link'].includes(entry.type))
    return `'${entry.path}' is a ${entry.type} (device nodes, fifos and other special files are refused)`;
  if ((entry.mode ?? 0) & 0o6000) return `'${entry.path}' has the setuid or setgid bit`;
  // As a snapshot would: a tree its owner cannot walk cannot be verified (nor exported) by a non-root user.
  if (entry.type === 'Directory' && ((entry.mode ?? 0) & 0o500) !== 0o500)
    return `directory '${entry.path}' is not readable by its owner (mode ${((entry.mode ?? 0) & 0o7777).toString(8)})`;
  const inTree = match[2] ?? '';
  if (posix.normalize(inTree || '.') === '.' && entry.type !== 'Directory') return `'${entry.path}' is a ${entry.type}: a layer's tree is a directory`;
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? '';
    if (target.startsWith('/')) return `symlink '${entry.path}' points to the absolute path '${target}'`;
    if (climbsOut(posix.dirname(inTree), target)) return `symlink '${entry.path}' points out of the layer ('${target}')`;
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
export async function restoreWhiteouts(tree: string, file: string): Promise<void> {
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  // The extraction set modes already: a read-only dir holding markers is opened for the restore, then closed again.
  const reopened = new Map<string, number>();
  const reopen = async (dir: string) => {
    const mode = (await lstat(dir)).mode & 0o7777;
    if (reopened.has(dir) || mode & 0o200) return;
    await chmod(dir, mode | 0o200);
    reopened.set(dir, mode);
  };
  const visit = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      if (name.startsWith(WHITEOUT_PREFIX)) {
        if (!st.isFile() || st.size !== 0) reject(file, `whiteout marker '${path}' is not an empty file`);
        await reopen(dir);
        await unlink(path);
        if (name === OPAQUE_MARKER) opaque.push(dir);
        else {
          const hidden = join(dir, name.slice(WHITEOUT_PREFIX.length));
          if (lstatSync(hidden, { throwIfNoEntry: false })) reject(file, `whiteout '${path}' hides a path of its own layer`);
          whiteouts.push(hidden);
        }
      } else if (st.isDirectory()) await visit(path);
    }
  };
  await visit(tree);
  // The layer's directory (the tree's parent) is on the same filesystem and outside the tree.
  try {
    await makeWhiteouts(whiteouts, dirname(tree));
    for (const dir of opaque) await markOpaque(dir);
  } catch (error) {
    reject(file, `cannot restore whiteouts: ${(error as Error).message}`);
  }
  for (const [dir, mode] of reopened) await chmod(dir, mode);
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
    const { hashes: archived } = await extractChecked(source, staging.dir, unsafe).catch((error: Error) => reject(source, error.message));

    let manifest: ArchiveManifest;
    try {
      manifest = JSON.parse(readFileSync(join(staging.dir, 'manifest.json'), 'utf8')) as ArchiveManifest;
    } catch {
      reject(source, 'no readable manifest.json');
    }
    if (
      typeof manifest !== 'object' ||
      manifest === null ||
      manifest.format !== 'sandbox-run-layers' ||
      manifest.version !== 1 ||
      !Array.isArray(manifest.layers)
    )
      reject(source, 'manifest.json is not a sandbox-run layer manifest (version 1)');
    if (!manifest.layers.every((layer) => typeof layer === 'object' && layer !== null && !Array.isArray(layer)))
      reject(source, 'manifest.json lists a layer that is not an object');
    const listed = new Set(manifest.layers.map((layer) => String(layer.digest).replace(/^sha256:/, '')));
    // Layers are committed one by one: anything that would fail halfway must be refused before the first.
    if (listed.size !== manifest.layers.length) reject(source, 'manifest.json lists a layer twice');
    for (const name of await readdir(staging.dir)) if (name !== 'manifest.json' && !listed.has(name)) reject(source, `layer ${name} is not in the manifest`);

    // Check every layer before committing any, so a bad archive leaves nothing.
    const checked: { layer: ArchiveManifest['layers'][number]; part: Staging; digested: { digest: string; size: number }; names: string[] }[] = [];
    for (const layer of [...manifest.layers].reverse()) {
      const hex = String(layer.digest).replace(/^sha256:/, '');
      if (!/^[0-9a-f]{64}$/.test(hex)) reject(source, `bad digest '${layer.digest}' in the manifest`);
      if (layer.parent !== undefined && !/^sha256:[0-9a-f]{64}$/.test(String(layer.parent)))
        reject(source, `bad parent digest '${layer.parent}' in the manifest`);
      const dir = join(staging.dir, hex);
      if (!existsSync(join(dir, 'tree'))) reject(source, `layer ${layer.digest} has no files in the archive`);
      if (layer.parent && listed.has(layer.parent.replace(/^sha256:/, '')) && !checked.some((done) => done.digested.digest === layer.parent))
        reject(source, `manifest.json lists layer ${layer.digest} after its parent ${layer.parent} (layers go top first)`);
      if (layer.parent && !listed.has(layer.parent.replace(/^sha256:/, '')) && !(await store.get(layer.parent)))
        reject(source, `layer ${layer.digest} needs parent ${layer.parent}, which is neither in the archive nor in the store`);
      const names = Array.isArray(layer.names) ? layer.names.filter((name) => typeof name === 'string') : [];
      for (const name of names) {
        try {
          checkName(name);
        } catch (error) {
          reject(source, (error as Error).message);
        }
      }
      await restoreWhiteouts(join(dir, 'tree'), source);
      // Content hashes were taken while extracting: the digest only walks the tree.
      const prefix = `${hex}/tree/`;
      const known = new Map<string, string>();
      for (const [path, sum] of archived) if (path.startsWith(prefix)) known.set(path.slice(prefix.length), sum);
      const { digest, size, entries } = await treeDigest(join(dir, 'tree'), undefined, { hashes: known, ...(layer.parent ? { parent: layer.parent } : {}) });
      if (digest !== `sha256:${hex}`) reject(source, `digest mismatch: the manifest says sha256:${hex}, the content is ${digest}`);
      // Each target was checked alone; a chain of them (d/l -> .., x -> d/l/../..) can still lead out.
      for (const entry of entries)
        if (entry.type === 'symlink' && (await symlinkLeaves(join(dir, 'tree'), entry.path)))
          reject(source, `symlink '${prefix}${entry.path}' points out of the layer through other symlinks ('${entry.target}')`);
      checked.push({ layer, part: { dir, tree: join(dir, 'tree'), discard: () => removeTree(dir) }, digested: { digest, size }, names });
    }
    const imported: LayerInfo[] = [];
    for (const { layer, part, digested, names } of checked) {
      const info = await store
        .commit(part, { ...(layer.parent ? { parent: layer.parent } : {}), source: { kind: 'import', file: source } }, names[0], { digested })
        .catch((error: Error) => reject(source, error.message));
      for (const name of names.slice(1)) await store.tag(name, info.digest);
      imported.push(await store.require(info.digest));
    }
    return imported.reverse();
  } finally {
    staging.discard();
  }
}
