export { openStore, defaultStoreDir, LayerStore, STORE_VERSION, type LayerLease, type PruneResult } from './store.js';
export type { BuildOptions } from './build.js';
export type { ExportOptions, ArchiveManifest } from './archive.js';
export type { DiffEntry } from './diff.js';
export type { LayerInfo, LayerRecipe } from './types.js';
