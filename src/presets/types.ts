import type { BindMount, OverlayMount } from '../sandbox/options.js';
import type { ServiceSpec } from '../services/types.js';

/** What a preset adds to one sandbox. */
export interface PresetParts {
  overlays?: OverlayMount[];
  binds?: BindMount[];
  services?: ServiceSpec[];
  env?: Record<string, string>;
  /** Host-side leftovers of this sandbox to remove when it is gone. */
  cleanup?: () => void;
}

/**
 * A ready-made service with its data, e.g. `postgres({ seed })`. `prepare()`
 * builds what all sandboxes share (cached across runs); `forSandbox()` gives
 * what each sandbox gets.
 */
export interface Preset {
  readonly name: string;
  prepare(): Promise<void>;
  forSandbox(): PresetParts;
}
