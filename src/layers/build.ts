import { createHash } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { glob } from 'tinyglobby';
import { SandboxError } from '../errors.js';
import { removeTree } from '../process/sweep.js';
import type { SandboxOptions } from '../sandbox/options.js';
import { run } from '../sandbox/run.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { diskFullError, outputSaysStoreFull } from './disk-full.js';
import { fileHash } from './hash.js';
import { withLock } from './lock.js';
import type { LayerStore } from './store.js';
import type { LayerInfo, LayerRecipe } from './types.js';

export interface BuildOptions {
  /** Rebuild even when the cache has the result. */
  force?: boolean;
}

/** Lines of output kept in a failed build's error. */
const TAIL_LINES = 20;

function recipeText(recipe: LayerRecipe): string {
  return typeof recipe.run === 'function' ? recipe.run.toString() : JSON.stringify(recipe.run);
}

/**
 * The cache key: sha256 over the parent digest, the command (or the
 * function's source), the mount point, the recipe's cacheKey, and every
 * input file's path and content hash.
 */
export async function buildKey(recipe: LayerRecipe, parentDigest: string | undefined): Promise<string> {
  const cwd = resolve(recipe.cwd ?? process.cwd());
  const files = recipe.inputs?.length ? (await glob([...recipe.inputs], { cwd, dot: true, onlyFiles: true })).sort() : [];
  if (recipe.inputs?.length && files.length === 0)
    throw new SandboxError('BAD_OPTIONS', `build ${recipe.name}: no file matches the inputs ${recipe.inputs.join(' ')}`);
  const inputs = await Promise.all(files.map(async (file) => [file, await fileHash(join(cwd, file))]));
  const text = JSON.stringify({
    parent: parentDigest ?? null,
    run: recipeText(recipe),
    mountPoint: recipe.mountPoint,
    cacheKey: recipe.cacheKey ?? '',
    inputs,
  });
  return createHash('sha256').update(text).digest('hex');
}

function tail(text: string): string {
  return text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
}

/** Implements {@link LayerStore.build}: cached by key; one build per key at a time across processes. */
export async function buildLayer(store: LayerStore, recipe: LayerRecipe, options: BuildOptions): Promise<LayerInfo> {
  const parent = recipe.parent ? await store.require(recipe.parent) : undefined;
  const key = await buildKey(recipe, parent?.digest);
  const hit = async (): Promise<LayerInfo | undefined> => {
    const digest = store.cached(key);
    // A corrupt cached layer is built again: committing the same content replaces it.
    if (!digest || (await store.check(digest))) return undefined;
    await store.tag(recipe.name, digest);
    return store.require(digest);
  };
  if (!options.force) {
    const found = await hit();
    if (found) return found;
  }
  return withLock(join(store.dir, 'locks', `build-${key}`), async () => {
    // Whoever held the lock before us may have built it.
    if (!options.force) {
      const found = await hit();
      if (found) return found;
    }
    await using _lease = parent ? await store.lease(parent.digest) : undefined;
    const staging = store.stage();
    try {
      const lowers = parent ? await store.lowerDirs(parent.digest) : [join(staging.dir, 'empty')];
      if (!parent) mkdirSync(lowers[0]!, { mode: 0o755 });
      const work = join(staging.dir, 'work');
      // The overlay's root takes its mode from the upper dir: give it the parent's.
      mkdirSync(staging.tree, { mode: statSync(lowers[0]!).mode & 0o7777 });
      mkdirSync(work);
      const sandboxOptions: SandboxOptions = {
        cwd: resolve(recipe.cwd ?? process.cwd()),
        workdir: 'ro',
        overlays: [{ lower: lowers, target: recipe.mountPoint, upper: { upper: staging.tree, work } }],
        ...(recipe.env ? { env: recipe.env } : {}),
        ...(recipe.images ? { images: recipe.images } : {}),
      };
      if (typeof recipe.run === 'function') {
        await using sandbox = await Sandbox.create(sandboxOptions);
        await recipe.run(sandbox);
      } else {
        const [file, ...args] = recipe.run;
        if (!file) throw new SandboxError('BAD_OPTIONS', `build ${recipe.name}: empty command`);
        const result = await run(file, args, { ...sandboxOptions, all: true, stdin: 'ignore' });
        // The writable layer lives in the store: a command that filled its disk failed for want of space there.
        if (result.exitCode !== 0 && outputSaysStoreFull(store.dir, result.all ?? '')) throw diskFullError(store.dir);
        if (result.exitCode !== 0)
          throw new SandboxError('SETUP_FAILED', `build ${recipe.name} failed (exit ${result.exitCode}); output tail:\n${tail(result.all ?? '')}`, {
            command: recipe.run,
            exitCode: result.exitCode,
          });
      }
      removeTree(work);
      if (!parent) removeTree(lowers[0]!);
      const info = await store.commit(
        staging,
        { ...(parent ? { parent: parent.digest } : {}), source: { kind: 'build', recipe: recipeText(recipe), cacheKey: key } },
        recipe.name,
      );
      await store.remember(key, info.digest);
      return info;
    } finally {
      staging.discard();
    }
  });
}
