import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SandboxError } from '../errors.js';
import { sandboxRunHome } from '../home.js';
import { processAlive } from '../process/alive.js';
import { ownedName, ownerPid, removeTree, sweepDeadOwners } from '../process/sweep.js';
import { type ExportOptions, exportLayers, importLayers } from './archive.js';
import { type BuildOptions, buildLayer } from './build.js';
import { copyTree } from './copy.js';
import { type DiffEntry, diffTree } from './diff.js';
import { orDiskFull } from './disk-full.js';
import { syncDir, syncTree, writable, writeFileAtomic } from './fs-util.js';
import { isImage } from './image-source.js';
import { corruptLayerError, mountProblem, readMeta, type Verdict, verifyLayer } from './integrity.js';
import { withLock } from './lock.js';
import { type ImageImport, type ImageImportOptions, importImage } from './oci-import.js';
import { pruneDownloads } from './registry/download-cache.js';
import { type ImagePull, type PullOptions, pullImage } from './registry/pull.js';
import { writeSeal } from './seal.js';
import { treeDigest } from './tree.js';
import type { LayerInfo, LayerRecipe } from './types.js';

/** On-disk layout version, in `<store>/VERSION`. Bump on incompatible change. */
export const STORE_VERSION = 1;

/** What a layer's meta.json holds (names live in tags.json, the path is where it lies). */
export type LayerMeta = Omit<LayerInfo, 'names' | 'path'>;

/** A tree being made, not yet visible: `<store>/tmp/<pid>-<random>/`. */
export interface Staging {
  dir: string;
  tree: string;
  discard(): void;
}

/** A held lease; dispose to release. */
export interface LayerLease extends AsyncDisposable {
  readonly digest: string;
  release(): void;
}

/** One layer's result of {@link LayerStore.verify}. */
export interface VerifyResult extends Verdict {
  digest: string;
  names: string[];
}

export interface PruneResult {
  removed: LayerInfo[];
  /** Leftover temporary trees of dead processes. */
  leftovers: string[];
  freedBytes: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;
const HEX = /^[0-9a-f]{64}$/;

/** The default store: `<sandbox-run home>/store`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(sandboxRunHome(env), 'store');
}

/** Options of {@link LayerStore.commit}. */
export interface CommitOptions {
  /** Refuse the tree unless its digest is this (import). */
  expectDigest?: string;
  /** Digest and size already computed over the staged tree. */
  digested?: { digest: string; size: number };
  /** Content hashes of the staged tree's files by path, known already (a snapshot hashes its source while copying it). */
  hashes?: ReadonlyMap<string, string>;
  /** false: skip fsync before the rename (a crash of the machine may then lose the layer's data). */
  durable?: boolean;
  /** false: the tree has no opaque markers to read (a snapshot's copy). */
  xattrs?: boolean;
}

/** Throws unless `name` is a valid layer name. */
export function checkName(name: string): void {
  if (!NAME.test(name) || name.startsWith('sha256:') || name.includes('..'))
    throw new SandboxError('BAD_OPTIONS', `invalid layer name '${name}': use letters, digits and _ . : / - (128 at most)`);
}

function notFound(what: string): never {
  throw new SandboxError('BAD_OPTIONS', `no layer named '${what}' (see sandbox-run layers)`);
}

/**
 * A layer store on disk. Every change takes `<store>/lock`; trees are made
 * in `tmp/` and renamed into `layers/`, so readers never see half a layer.
 */
export class LayerStore {
  /** The store's directory (absolute). */
  readonly dir: string;

  /**
   * Opens the store at `dir` (default: {@link defaultStoreDir}), creating the
   * layout if needed, checking its version and sweeping dead processes' leftovers.
   */
  constructor(options: { dir?: string } | string = {}) {
    const dir = typeof options === 'string' ? options : options.dir;
    this.dir = resolve(dir ?? defaultStoreDir());
    this.init();
  }

  get #lockFile(): string {
    return join(this.dir, 'lock');
  }

  /** Runs `fn` holding the store's write lock. */
  locked<T>(fn: () => Promise<T> | T): Promise<T> {
    return withLock(this.#lockFile, fn);
  }

  /** Creates the layout if needed, checks its version and sweeps dead processes' leftovers. */
  init(): void {
    const versionFile = join(this.dir, 'VERSION');
    // A store seen read-only (e.g. from inside a sandbox, whose root is
    // read-only) still serves reads: get, list, lowerDirs.
    const readOnly = existsSync(versionFile) && !writable(this.dir);
    if (!readOnly) {
      for (const sub of ['layers', 'tmp', 'leases', 'builds', 'locks']) mkdirSync(join(this.dir, sub), { recursive: true });
      if (!existsSync(versionFile)) writeFileAtomic(versionFile, `${STORE_VERSION}\n`);
    }
    const version = Number(readFileSync(versionFile, 'utf8').trim());
    if (version !== STORE_VERSION)
      throw new SandboxError('BAD_OPTIONS', `layer store ${this.dir} has layout version ${version}; this sandbox-run reads version ${STORE_VERSION}`);
    if (!readOnly) this.#sweep();
  }

  /** Removes temporary trees and leases whose process is gone. */
  #sweep(): string[] {
    const swept = sweepDeadOwners(join(this.dir, 'tmp'), ownerPid);
    // Leases are named `<digest>.<pid>-<random>`.
    sweepDeadOwners(join(this.dir, 'leases'), (name) => ownerPid(name.replace(/^[0-9a-f]{64}\./, '')));
    return swept;
  }

  /** A fresh staging directory under `tmp/` (same filesystem as `layers/`, so commit is a rename). */
  stage(): Staging {
    const dir = join(this.dir, 'tmp', ownedName());
    mkdirSync(dir);
    return { dir, tree: join(dir, 'tree'), discard: () => removeTree(dir) };
  }

  #tags(): Record<string, string> {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'tags.json'), 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  #writeTags(tags: Record<string, string>): void {
    writeFileAtomic(join(this.dir, 'tags.json'), `${JSON.stringify(tags, null, 2)}\n`);
  }

  #meta(hex: string): LayerMeta | undefined {
    const meta = readMeta(join(this.dir, 'layers', hex), hex);
    return typeof meta === 'string' ? undefined : meta;
  }

  /** The tags pointing at `digest`, sorted. */
  #namesOf(digest: string, tags = this.#tags()): string[] {
    return Object.keys(tags)
      .filter((name) => tags[name] === digest)
      .sort();
  }

  /** A layer whose meta.json is unusable, as far as it can be described (so that it can be listed and removed). */
  #brokenInfo(hex: string, reason: string, tags = this.#tags()): LayerInfo {
    const digest = `sha256:${hex}`;
    return {
      digest,
      names: this.#namesOf(digest, tags),
      size: 0,
      created: '',
      source: { kind: 'unknown' },
      path: join(this.dir, 'layers', hex, 'tree'),
      corrupt: reason,
    };
  }

  /** "seeded-db (sha256:0123456789ab…)": how errors name a layer. */
  #label(hex: string, tags = this.#tags()): string {
    const [name] = this.#namesOf(`sha256:${hex}`, tags);
    return name ? `${name} (sha256:${hex.slice(0, 12)}…)` : `sha256:${hex}`;
  }

  /** Throws CORRUPT_LAYER unless the layer passes the mount check (see integrity.ts). */
  async #mountable(hex: string, ref: string): Promise<void> {
    if (!existsSync(join(this.dir, 'layers', hex))) throw corruptLayerError(this.#label(hex), `its directory layers/${hex} is missing`, ref);
    const problem = await mountProblem(join(this.dir, 'layers', hex), hex);
    if (problem) throw corruptLayerError(this.#label(hex), problem, ref);
  }

  #info(hex: string, tags = this.#tags()): LayerInfo | undefined {
    const meta = this.#meta(hex);
    if (!meta) return undefined;
    return { ...meta, names: this.#namesOf(meta.digest, tags), path: join(this.dir, 'layers', hex, 'tree') };
  }

  /** The hex of a tag, a digest (`sha256:<hex>`) or a unique hex prefix (12+ digits). */
  #resolve(nameOrDigest: string): string | undefined {
    const tag = this.#tags()[nameOrDigest];
    if (tag) return tag.slice('sha256:'.length);
    const hex = nameOrDigest.replace(/^sha256:/, '');
    // A layer directory whose meta.json is broken still resolves: to be reported and removed.
    if (HEX.test(hex)) return existsSync(join(this.dir, 'layers', hex)) ? hex : undefined;
    if (/^[0-9a-f]{12,63}$/.test(hex)) {
      const matches = readdirSync(join(this.dir, 'layers')).filter((name) => name.startsWith(hex));
      if (matches.length === 1) return matches[0];
    }
    return undefined;
  }

  /** A layer by tag or digest, or undefined. */
  async get(nameOrDigest: string): Promise<LayerInfo | undefined> {
    const hex = this.#resolve(nameOrDigest);
    return hex ? this.#info(hex) : undefined;
  }

  /** Like {@link get}, but a missing layer is an error. */
  async require(nameOrDigest: string): Promise<LayerInfo> {
    const info = await this.get(nameOrDigest);
    if (info) return info;
    const hex = this.#resolve(nameOrDigest);
    if (!hex) return notFound(nameOrDigest);
    const reason = readMeta(join(this.dir, 'layers', hex), hex);
    throw corruptLayerError(this.#label(hex), typeof reason === 'string' ? reason : 'its directory is missing', nameOrDigest);
  }

  /**
   * Every layer, newest first. A corrupt one carries `corrupt` (the mount
   * check without contents; layers committed before seals existed are not
   * verified here).
   */
  async list(): Promise<LayerInfo[]> {
    const tags = this.#tags();
    const layers: LayerInfo[] = [];
    for (const hex of readdirSync(join(this.dir, 'layers'))) {
      const problem = await mountProblem(join(this.dir, 'layers', hex), hex, { unsealed: 'skip' });
      const info = this.#info(hex, tags);
      if (!info) layers.push(this.#brokenInfo(hex, problem ?? 'meta.json is unreadable', tags));
      else layers.push(problem ? { ...info, corrupt: problem } : info);
    }
    return layers.sort((a, b) => b.created.localeCompare(a.created));
  }

  /** The mount check of one layer (see {@link lowerDirs}): what is wrong with it, or undefined. */
  async check(nameOrDigest: string): Promise<string | undefined> {
    const hex = this.#resolve(nameOrDigest) ?? notFound(nameOrDigest);
    return mountProblem(join(this.dir, 'layers', hex), hex);
  }

  /**
   * Host directories of a layer and its parents, top first: `overlays: [{ lower, target }]`.
   * Each is checked first (meta.json, tree/, seal; once per process while
   * they stay as they are): a corrupt layer throws CORRUPT_LAYER, naming it.
   */
  async lowerDirs(nameOrDigest: string): Promise<string[]> {
    const dirs: string[] = [];
    let hex = this.#resolve(nameOrDigest) ?? notFound(nameOrDigest);
    let ref = nameOrDigest;
    for (;;) {
      await this.#mountable(hex, ref);
      const meta = this.#meta(hex)!;
      dirs.push(join(this.dir, 'layers', hex, 'tree'));
      if (!meta.parent) return dirs;
      const parent = meta.parent.slice('sha256:'.length);
      if (!existsSync(join(this.dir, 'layers', parent))) throw corruptLayerError(this.#label(hex), `its parent ${meta.parent} is missing`, ref);
      if (dirs.length > 128) throw new SandboxError('SETUP_FAILED', `layer ${nameOrDigest}: parent chain too long or cyclic`);
      hex = parent;
      ref = meta.parent;
    }
  }

  /**
   * Re-digests layers in full (default: all) against their recorded digests.
   * A layer whose content is right but whose seal no longer matches (copied
   * with `cp -a`, restored from a backup) is sealed again. Parents of the
   * named layers are verified too.
   */
  async verify(...names: string[]): Promise<VerifyResult[]> {
    const tags = this.#tags();
    const queue = names.length
      ? names.map((name) => this.#resolve(name) ?? notFound(name))
      : (await this.list()).map((info) => info.digest.slice('sha256:'.length));
    const results: VerifyResult[] = [];
    const done = new Set<string>();
    while (queue.length) {
      const hex = queue.shift()!;
      if (done.has(hex)) continue;
      done.add(hex);
      const digest = `sha256:${hex}`;
      const result: VerifyResult = { digest, names: this.#namesOf(digest, tags), status: 'corrupt' };
      const meta = this.#meta(hex);
      if (!existsSync(join(this.dir, 'layers', hex))) result.reason = 'its directory is missing';
      else if (meta?.parent && !existsSync(join(this.dir, 'layers', meta.parent.slice('sha256:'.length))))
        result.reason = `its parent ${meta.parent} is missing`;
      else Object.assign(result, await verifyLayer(join(this.dir, 'layers', hex), hex));
      results.push(result);
      if (meta?.parent) queue.push(meta.parent.slice('sha256:'.length));
    }
    return results;
  }

  /** Keeps a layer from being removed while the lease lives (a pid file under `leases/`). */
  async lease(nameOrDigest: string): Promise<LayerLease> {
    return this.locked(() => {
      const hex = this.#resolve(nameOrDigest) ?? notFound(nameOrDigest);
      const file = join(this.dir, 'leases', `${hex}.${ownedName()}`);
      writeFileSync(file, '');
      const release = () => rmSync(file, { force: true });
      return { digest: `sha256:${hex}`, release, [Symbol.asyncDispose]: async () => release() };
    });
  }

  #leased(hex: string): boolean {
    return readdirSync(join(this.dir, 'leases')).some((name) => name.startsWith(`${hex}.`) && processAlive(ownerPid(name.slice(hex.length + 1))));
  }

  /** Points a tag at a digest. */
  async tag(name: string, digest: string): Promise<void> {
    checkName(name);
    await this.locked(() => this.#writeTags({ ...this.#tags(), [name]: digest }));
  }

  /**
   * Makes a staged tree a layer: digest it, then (under the lock) rename it
   * into `layers/<hex>` unless that digest exists already, and tag it.
   */
  async commit(staging: Staging, meta: Omit<LayerMeta, 'digest' | 'size' | 'created'>, name?: string, options: CommitOptions = {}): Promise<LayerInfo> {
    if (name !== undefined) checkName(name);
    try {
      return await orDiskFull(this.dir, () => this.#commit(staging, meta, name, options));
    } finally {
      staging.discard();
    }
  }

  async #commit(staging: Staging, meta: Omit<LayerMeta, 'digest' | 'size' | 'created'>, name: string | undefined, options: CommitOptions): Promise<LayerInfo> {
    const { digest, size } =
      options.digested ??
      (await treeDigest(staging.tree, undefined, {
        ...(options.xattrs === false ? { xattrs: false } : {}),
        ...(options.hashes ? { hashes: options.hashes } : {}),
        ...(meta.parent ? { parent: meta.parent } : {}),
      }));
    const hex = digest.slice('sha256:'.length);
    if (options.expectDigest && options.expectDigest !== digest)
      throw new SandboxError('BAD_OPTIONS', `digest mismatch: the manifest says ${options.expectDigest}, the content is ${digest}`);
    const full: LayerMeta = {
      digest,
      ...(meta.parent ? { parent: meta.parent } : {}),
      size,
      created: new Date().toISOString(),
      source: meta.source,
      ...(meta.image ? { image: meta.image } : {}),
    };
    await writeFile(join(staging.dir, 'meta.json'), `${JSON.stringify(full, null, 2)}\n`);
    // The tree is final: record what it looks like, so that a change after commit is seen at mount.
    await writeSeal(staging.dir);
    // Durable before visible: flush the tree's files, then rename (then flush the rename).
    if (options.durable !== false) await syncTree(staging.dir);
    return await this.locked(async () => {
      if (meta.parent && !this.#meta(meta.parent.replace(/^sha256:/, ''))) throw new SandboxError('BAD_OPTIONS', `parent layer ${meta.parent} is gone`);
      const target = join(this.dir, 'layers', hex);
      // The same content committed again replaces a corrupt copy instead of
      // reusing it; an intact one with a stale seal (a restored store) is
      // resealed by the check and kept, as it may be mounted right now.
      const added = !existsSync(target) || !!(await mountProblem(target, hex));
      if (added) {
        if (existsSync(target)) {
          const aside = join(this.dir, 'tmp', `${ownedName()}-rm`);
          renameSync(target, aside);
          removeTree(aside);
        }
        renameSync(staging.dir, target);
        syncDir(join(this.dir, 'layers'));
      }
      try {
        if (name) this.#writeTags({ ...this.#tags(), [name]: digest });
      } catch (error) {
        // Untagged, the new layer would be litter (e.g. tags.json could not be written on a full disk).
        if (added) renameSync(target, staging.dir);
        throw error;
      }
      return this.#info(hex)!;
    });
  }

  /** Copies `dir` into a new layer (or reuses the identical one) tagged `name`. */
  async snapshot(dir: string, options: { name: string; parent?: string }): Promise<LayerInfo> {
    const source = resolve(dir);
    const parent = options.parent ? (await this.require(options.parent)).digest : undefined;
    const staging = await orDiskFull(this.dir, async () => this.stage());
    let method: 'reflink' | 'copy';
    let hashes: Map<string, string>;
    try {
      ({ method, hashes } = await orDiskFull(this.dir, () => copyTree(source, staging.tree)));
    } catch (error) {
      staging.discard();
      throw error;
    }
    return this.commit(staging, { ...(parent ? { parent } : {}), source: { kind: 'snapshot', path: source, method } }, options.name, { xattrs: false, hashes });
  }

  /** Removes tags; a layer left with no tag, no child and no live lease is deleted. Returns the deleted layers. */
  async remove(...names: string[]): Promise<LayerInfo[]> {
    return this.locked(() => {
      const tags = this.#tags();
      const candidates: string[] = [];
      for (const name of names) {
        const hex = this.#resolve(name) ?? notFound(name);
        if (tags[name]) delete tags[name];
        else for (const tag of Object.keys(tags)) if (tags[tag] === `sha256:${hex}`) delete tags[tag];
        candidates.push(hex);
      }
      this.#writeTags(tags);
      return this.#collect(candidates, tags);
    });
  }

  /** Deletes the candidates (and then their parents) that nothing holds. Call under the lock. */
  #collect(candidates: string[], tags: Record<string, string>): LayerInfo[] {
    const removed: LayerInfo[] = [];
    const tagged = new Set(Object.values(tags));
    const layers = readdirSync(join(this.dir, 'layers'));
    const metas = new Map(layers.map((hex) => [hex, this.#meta(hex)]));
    const queue = [...candidates];
    while (queue.length) {
      const hex = queue.shift()!;
      if (!metas.has(hex)) continue;
      // A layer whose meta.json is broken is still removable (as if it had no parent).
      const meta = metas.get(hex);
      const digest = `sha256:${hex}`;
      const hasChild = [...metas.values()].some((other) => other?.parent === digest);
      if (tagged.has(digest) || hasChild || this.#leased(hex)) continue;
      const info = this.#info(hex, tags) ?? this.#brokenInfo(hex, 'meta.json is unreadable', tags);
      const aside = join(this.dir, 'tmp', `${ownedName()}-rm`);
      renameSync(join(this.dir, 'layers', hex), aside); // gone from view at once
      removeTree(aside);
      metas.delete(hex);
      removed.push(info);
      if (meta?.parent) queue.push(meta.parent.slice('sha256:'.length));
    }
    return removed;
  }

  /** Removes untagged layers nothing builds on or leases, and dead processes' leftovers. */
  async prune(): Promise<PruneResult> {
    return this.locked(() => {
      // Partial downloads of failed pulls (downloads/, kept for a pull to resume) are leftovers too.
      const leftovers = [...this.#sweep(), ...pruneDownloads(this.dir)];
      const removed = this.#collect(readdirSync(join(this.dir, 'layers')), this.#tags());
      // Build cache entries whose layer is gone would only miss.
      for (const key of readdirSync(join(this.dir, 'builds'))) if (HEX.test(key) && !this.cached(key)) rmSync(join(this.dir, 'builds', key), { force: true });
      return { removed, leftovers, freedBytes: removed.reduce((sum, info) => sum + info.size, 0) };
    });
  }

  /** Runs a recipe in a sandbox and commits its writable layer, unless the cache has it. */
  build(recipe: LayerRecipe, options: BuildOptions = {}): Promise<LayerInfo> {
    return orDiskFull(this.dir, () => buildLayer(this, recipe, options));
  }

  /** Writes a layer (with its parents unless `single`) as a tar archive (.tar.gz: gzipped). */
  async export(nameOrDigest: string, file: string, options: ExportOptions = {}): Promise<LayerInfo[]> {
    // An archive of a corrupt layer would carry the damage elsewhere: refuse it here, as a mount would.
    await this.lowerDirs(nameOrDigest);
    return exportLayers(this, nameOrDigest, file, options);
  }

  /**
   * Restores layers from an archive made by {@link export}, or imports an
   * image (an OCI layout directory or tar, a `docker save` archive: see
   * {@link importImage}), verifying every digest. Top layer first.
   */
  import(file: string, options: ImageImportOptions = {}): Promise<LayerInfo[]> {
    return orDiskFull(this.dir, async () => ((await isImage(file)) ? (await importImage(this, file, options)).layers : importLayers(this, file)));
  }

  /** Imports an OCI image layout or a `docker save` archive as a stack of layers, the top one tagged and keeping the image config. */
  importImage(file: string, options: ImageImportOptions = {}): Promise<ImageImport> {
    return orDiskFull(this.dir, () => importImage(this, file, options));
  }

  /**
   * Pulls an image from a registry (`postgres:16`, `ghcr.io/org/app:1`) as a
   * stack of layers, the top one tagged and keeping the image config: see {@link pullImage}.
   */
  pull(reference: string, options: PullOptions = {}): Promise<ImagePull> {
    return orDiskFull(this.dir, () => pullImage(this, reference, options));
  }

  /** What a writable layer added, changed and deleted relative to its lower dirs. */
  diff(upperDir: string, lowerDirs: readonly string[] = []): Promise<DiffEntry[]> {
    return diffTree(upperDir, lowerDirs);
  }

  /** Build cache: key file `builds/<key>` holding the digest. */
  cached(key: string): string | undefined {
    try {
      const digest = readFileSync(join(this.dir, 'builds', key), 'utf8').trim();
      return this.#meta(digest.replace(/^sha256:/, '')) ? digest : undefined;
    } catch {
      return undefined;
    }
  }

  async remember(key: string, digest: string): Promise<void> {
    await mkdir(join(this.dir, 'builds'), { recursive: true });
    writeFileAtomic(join(this.dir, 'builds', key), `${digest}\n`);
  }
}

/**
 * Opens (creating if needed) a layer store: `dir`, else
 * `$SANDBOX_RUN_HOME/store`, else `${XDG_CACHE_HOME:-~/.cache}/sandbox-run/store`.
 */
export async function openStore(options: { dir?: string } = {}): Promise<LayerStore> {
  return new LayerStore(options);
}
