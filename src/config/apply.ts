import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SandboxOptions } from '../sandbox/options.js';
import type { LoadedConfig } from './load.js';

/**
 * Sandbox options from the config with the command line's on top: lists
 * (overlays, binds, tmpfs) add up, single values from flags win.
 */
export function mergeOptions(loaded: LoadedConfig | undefined, flags: SandboxOptions): SandboxOptions {
  if (!loaded) return flags;
  const { config, path } = loaded;
  const base = config.sandbox ?? {};
  const root = dirname(path);
  // Outputs are read-write binds: what the sandbox writes there reaches the host.
  const outputs = (config.outputs ?? []).map((output) => {
    const source = resolve(root, output);
    mkdirSync(source, { recursive: true });
    return { source, target: source };
  });
  const defined = Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== undefined)) as SandboxOptions;
  return {
    ...base,
    ...defined,
    overlays: [...(base.overlays ?? []), ...(flags.overlays ?? [])],
    binds: [...(base.binds ?? []), ...outputs, ...(flags.binds ?? [])],
    tmpfs: [...(base.tmpfs ?? []), ...(flags.tmpfs ?? [])],
    env: { ...base.env, ...config.env, ...flags.env },
    rlimits: { ...base.rlimits, ...flags.rlimits },
  };
}
