/**
 * The layer store: immutable, content-addressed directory trees that
 * sandboxes only ever see through copy-on-write overlays.
 *
 * ```ts
 * const store = await openStore();                  // or new LayerStore({ dir })
 * const seed = await store.build({ name: 'seeded', parent: 'base', mountPoint: '/tmp/pg', run: ['sh', '-c', '...'], inputs: ['seed/*.sql'] });
 * await using lease = await store.lease('seeded');  // not removed while held (also by other processes)
 * const lower = await store.lowerDirs('seeded');    // host dirs, top first: overlays: [{ lower, target: '/tmp/pg' }]
 * ```
 *
 * Leases: `store.lease(nameOrDigest)` writes `leases/<hex>.<pid>-<id>`; `rm`
 * and `prune` skip a layer with a lease whose process is alive (a SIGKILLed
 * holder's lease is swept). Release with `lease.release()` or `await using`.
 */

export type { ArchiveManifest, ExportOptions } from './archive.js';
export { type BuildOptions, buildKey } from './build.js';
export type { DiffEntry } from './diff.js';
export { exportOci, LAYER_DIGEST_ANNOTATION, OCI_MEDIA, type OciDescriptor } from './oci.js';
export { type ImageImport, type ImageImportOptions, importImage } from './oci-import.js';
export { hostPlatform, type ImageConfig, type Platform, storeName } from './oci-index.js';
export type { LayerState, PullProgress } from './registry/progress.js';
export { type ImagePull, type PullOptions, pullImage } from './registry/pull.js';
export {
  type CommitOptions,
  checkName,
  defaultStoreDir,
  type LayerLease,
  LayerStore,
  openStore,
  type PruneResult,
  STORE_VERSION,
  type Staging,
} from './store.js';
export type { LayerInfo, LayerRecipe } from './types.js';
