import type { Preset } from '../presets/types.js';
import type { ConfigSandboxOptions } from '../sandbox/options.js';
import type { ServiceSpec } from '../services/types.js';
import type { PresetEntry } from './presets-schema.js';

/**
 * `sandbox.config.{ts,mts,js,mjs,json}`: found from the working directory
 * upward; command-line flags override it.
 */
export interface SandboxRunConfig {
  /** Options for every sandbox (mounts, network, env, limits); see SandboxOptions. */
  sandbox?: ConfigSandboxOptions;
  /**
   * Ready-made services with their data: preset objects, e.g.
   * `postgres({ seed: { sql: ['db/seed.sql'] } })`, or the same as data,
   * `{ postgres: { seed: { sql: ['db/seed.sql'] } } }` (no import needed).
   */
  presets?: PresetEntry[];
  /** Services started in every sandbox before the command, each ready before the next. */
  services?: ServiceSpec[];
  /** Paths (relative to the config file) written back to the host, e.g. 'coverage', 'reports'. Created if missing. */
  outputs?: string[];
  /** Variables for every sandbox (merged over sandbox.env). */
  env?: Record<string, string>;
  /** Sandboxes at once for --parallel without a number. */
  parallel?: number;
  /** Per-sandbox wall-clock limit: seconds or '90s', '10m'. */
  timeout?: number | string;
  /** The parallel runner shares test-runner caches (Jest's) between sandboxes and runs. Default: true. */
  sharedCaches?: boolean;
  /** Default output mode of the parallel runner. */
  output?: 'grouped' | 'prefixed' | 'quiet';
}

/** A config as loaded: its presets made into preset objects (relative paths resolved against the config's directory). */
export type LoadedSandboxRunConfig = Omit<SandboxRunConfig, 'presets'> & { presets?: Preset[] };

/** Types a config file: `export default defineConfig({ ... })`. */
export function defineConfig<T extends SandboxRunConfig>(config: T): T {
  return config;
}
