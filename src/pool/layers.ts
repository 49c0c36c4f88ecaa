import type { OverlayMount } from '../sandbox/options.js';

/** A layer from the store, mounted copy-on-write at `target` in every sandbox of the pool. */
export interface LayerMount {
  /** Tag or digest in the layer store. */
  layer: string;
  /** Absolute path inside the sandbox. */
  target: string;
}

/** What the pool needs of a layer store (a `LayerStore` is one). */
export interface LayerSource {
  lowerDirs(nameOrDigest: string): Promise<string[]>;
  /** Keeps the layer from being removed while the holder's process lives. */
  lease?(nameOrDigest: string): Promise<{ release(): void }>;
}

/**
 * Overlays for `layers`, each leased so that the store does not remove it
 * while the pool uses it (until `release()`, or the process's death: the
 * store sweeps leases of dead processes).
 */
export async function resolveLayers(layers: readonly LayerMount[], store?: LayerSource): Promise<{ overlays: OverlayMount[]; release: () => void }> {
  if (layers.length === 0) return { overlays: [], release: () => undefined };
  const source = store ?? (await (await import('../layers/index.js')).openStore());
  const leases: { release(): void }[] = [];
  const release = () => leases.splice(0).forEach((lease) => lease.release());
  try {
    const overlays = await Promise.all(
      layers.map(async ({ layer, target }) => {
        const lease = await source.lease?.(layer);
        if (lease) leases.push(lease);
        return { lower: await source.lowerDirs(layer), target };
      }),
    );
    return { overlays, release };
  } catch (error) {
    release();
    throw error;
  }
}
