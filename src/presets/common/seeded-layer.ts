import { basename } from 'node:path';
import { openStore } from '../../layers/index.js';
import type { LayerStore } from '../../layers/store.js';
import type { LayerInfo, LayerRecipe } from '../../layers/types.js';
import type { PrepareResult } from '../types.js';
import { sha256 } from './inputs.js';

/** A preset's built layer, leased for this process's life, with the host dirs to mount (top first). */
export interface SeededLayer {
  layer: LayerInfo;
  lowers: string[];
  result: PrepareResult;
}

/**
 * Builds (or finds in the cache) a preset's seeded layer and leases it: the
 * store sweeps leases of dead processes, so sandboxes may be created from it
 * until this process exits.
 */
export async function buildSeededLayer(store: LayerStore | undefined, recipe: LayerRecipe, force: boolean): Promise<SeededLayer> {
  const layers = store ?? (await openStore());
  const started = new Date().toISOString();
  const layer = await layers.build(recipe, { force });
  await layers.lease(layer.digest);
  const lowers = await layers.lowerDirs(layer.digest);
  return { layer, lowers, result: { cached: layer.created < started, description: `${layer.names.join(', ') || '<none>'} ${layer.digest}` } };
}

/**
 * `<project>-<hash>/<what>`: two projects sharing a store keep their own
 * tag; the hash tells apart projects with the same directory name.
 */
export function projectLayerName(baseDir: string, what: string): string {
  const project =
    basename(baseDir)
      .replace(/[^\w.-]+/g, '_')
      .replace(/^[._-]+/, '')
      .slice(0, 40) || 'project';
  return `${project}-${sha256(baseDir).slice(0, 8)}/${what}`;
}
