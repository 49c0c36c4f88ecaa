import { Service } from '../services/service.js';
import type { ServiceSpec } from '../services/types.js';
import type { Preset } from '../presets/types.js';
import type { SandboxOptions } from './options.js';
import { Sandbox } from './sandbox.js';

/** A sandbox with its services (and the presets that bring them). */
export interface CreateSandboxOptions extends SandboxOptions {
  services?: readonly ServiceSpec[];
  presets?: readonly Preset[];
}

/**
 * Creates a sandbox and starts its services in order, each ready before the
 * next; resolves when all are ready. The services' exports (e.g.
 * DATABASE_URL) are in `sb.env` and in every process's environment.
 *
 * ```ts
 * await using sb = await createSandbox({ presets: [postgres({ seed: { sql: ['seed.sql'] } })] });
 * const client = new pg.Client(sb.env.DATABASE_URL);
 * ```
 */
export async function createSandbox(options: CreateSandboxOptions = {}): Promise<Sandbox> {
  const { services = [], presets = [], ...sandboxOptions } = options;
  await Promise.all(presets.map((preset) => preset.prepare()));
  const parts = presets.map((preset) => preset.forSandbox());
  const cleanup = () => parts.forEach((part) => part.cleanup?.());
  let sandbox: Sandbox;
  try {
    sandbox = await Sandbox.create({
      ...sandboxOptions,
      overlays: [...(sandboxOptions.overlays ?? []), ...parts.flatMap((part) => part.overlays ?? [])],
      binds: [...(sandboxOptions.binds ?? []), ...parts.flatMap((part) => part.binds ?? [])],
    });
  } catch (error) {
    cleanup();
    throw error;
  }
  sandbox.onDispose(cleanup);
  Object.assign(sandbox.env, ...parts.map((part) => part.env ?? {}));
  try {
    for (const spec of [...parts.flatMap((part) => part.services ?? []), ...services]) sandbox.addService(await Service.start(sandbox, spec));
  } catch (error) {
    await sandbox.dispose();
    throw error;
  }
  return sandbox;
}
