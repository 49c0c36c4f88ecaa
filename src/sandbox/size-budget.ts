import { availableParallelism, totalmem } from 'node:os';

/**
 * Every tmpfs in a sandbox (/tmp, /dev/shm, the writable layer) is memory.
 * The kernel's default, half of RAM each, times fifty sandboxes, lets a
 * test suite that writes big files take the host down. By default all
 * sandboxes running at once share half of the host's memory: each gets
 * its slice, half of it for the writable layer and a quarter each for /tmp
 * and /dev/shm.
 */
export const BUDGET_SHARE_OF_MEMORY = 0.5;
const MIB = 2 ** 20;
/** Below these a sandbox is of little use; the floor wins over the budget with very many sandboxes. */
const MIN_UPPER = 256 * MIB;
const MIN_TMPFS = 64 * MIB;

export interface DefaultSizes {
  /** /tmp, /dev/shm and extra tmpfs mounts, each. */
  tmpfs: number;
  /** The tmpfs holding the overlays' writable layers. */
  upper: number;
  /** How many sandboxes the budget was split between. */
  concurrency: number;
}

/** The default sizes for one of `concurrency` sandboxes running at once (default: one per core). */
export function defaultSizes(concurrency = availableParallelism(), memory = totalmem()): DefaultSizes {
  const slice = (memory * BUDGET_SHARE_OF_MEMORY) / Math.max(1, concurrency);
  const roundMiB = (bytes: number) => Math.floor(bytes / MIB) * MIB;
  return {
    upper: Math.max(MIN_UPPER, roundMiB(slice / 2)),
    tmpfs: Math.max(MIN_TMPFS, roundMiB(slice / 4)),
    concurrency: Math.max(1, concurrency),
  };
}

/** '3.0 GiB' / '768 MiB' for messages. */
export function formatSize(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / MIB)} MiB`;
}
