import type { BindMount, ImageMountOption, OverlayMount } from '../sandbox/options.js';
import type { ServiceSpec } from '../services/types.js';

/** What a preset adds to one sandbox. */
export interface PresetParts {
  overlays?: OverlayMount[];
  binds?: BindMount[];
  /** Images from the layer store mounted for services that run on them (`ServiceSpec.root` = `at`). */
  images?: ImageMountOption[];
  services?: ServiceSpec[];
  /** Variables for the sandbox; the user's own (config `env`, `-e`, API `env`) take precedence. */
  env?: Record<string, string>;
  /** Host-side leftovers of this sandbox to remove when it is gone. */
  cleanup?: () => void;
}

export interface PrepareOptions {
  /** Build again even when the cache has the result (`sandbox-run build --force`). */
  force?: boolean;
}

/** What prepare() did, for progress lines. */
export interface PrepareResult {
  /** true: the cache had it, nothing was built. */
  cached: boolean;
  /** What it made or found, e.g. the layer's name and digest. */
  description: string;
}

/**
 * A ready-made service with its data, e.g. `postgres({ seed })`.
 *
 * - `prepare()` builds what all sandboxes share, once per process (cached
 *   across runs, e.g. as a layer in the store); repeated calls return the
 *   same promise, except with `{ force: true }`.
 * - `forSandbox()` is called once per sandbox, after prepare() resolved,
 *   and gives what that sandbox gets: mounts, services (started in order,
 *   each ready before the next), variables, and a host-side cleanup.
 * - `resolveFrom(dir)`, if present, is called by the config loader before
 *   prepare(): relative paths in the preset's options resolve against the
 *   config file's directory.
 *
 * A wrapper delegates and changes the parts: `{ name: 'db', prepare: (o) =>
 * inner.prepare(o), forSandbox: () => change(inner.forSandbox()) }` (a
 * service's `exports` reach the sandbox too, not only `env`).
 */
export interface Preset {
  readonly name: string;
  prepare(options?: PrepareOptions): Promise<PrepareResult | void>;
  forSandbox(): PresetParts;
  resolveFrom?(dir: string): void;
}
