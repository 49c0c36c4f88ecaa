import { processScopedDir } from '../home.js';
import type { Preset } from '../presets/types.js';
import { removeTree } from '../process/sweep.js';
import { Service } from '../services/service.js';
import type { ServiceSpec } from '../services/types.js';
import { keepableOptions, keepSandbox } from './keep.js';
import type { SandboxOptions } from './options.js';
import { Sandbox } from './sandbox.js';

/** A sandbox with its services (and the presets that bring them). */
export interface CreateSandboxOptions extends SandboxOptions {
  services?: readonly ServiceSpec[];
  presets?: readonly Preset[];
  /**
   * Every writable layer (the working directory's, each overlay's, a
   * preset's database) on disk, so that `sb.keep()` can keep a failed
   * test's state for `sandbox-run open`. Costs disk writes instead of tmpfs.
   */
  keepable?: boolean;
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
  const { services = [], presets = [], keepable = false, ...sandboxOptions } = options;
  await Promise.all(presets.map((preset) => preset.prepare()));
  const parts = presets.map((preset) => preset.forSandbox());
  const cleanup = () => parts.forEach((part) => part.cleanup?.());
  let sandbox: Sandbox;
  // Swept by the next process if this one dies (its pid is in the name).
  const pending = keepable ? processScopedDir('keeping') : undefined;
  let keeping = false;
  try {
    const merged = {
      ...sandboxOptions,
      overlays: [...(sandboxOptions.overlays ?? []), ...parts.flatMap((part) => part.overlays ?? [])],
      binds: [...(sandboxOptions.binds ?? []), ...parts.flatMap((part) => part.binds ?? [])],
      images: [...(sandboxOptions.images ?? []), ...parts.flatMap((part) => part.images ?? [])],
    };
    sandbox = await Sandbox.create(pending ? keepableOptions(merged, pending) : merged);
  } catch (error) {
    cleanup();
    if (pending) removeTree(pending);
    throw error;
  }
  sandbox.onDispose(cleanup);
  if (pending) {
    const sb = sandbox;
    sb.onDispose(() => keeping || removeTree(pending));
    sb.setKeeper((keep) => {
      keeping = true;
      return keepSandbox(sb, pending, keep).catch(async (error: unknown) => {
        await sb.dispose();
        removeTree(pending);
        throw error;
      });
    });
  }
  Object.assign(sandbox.env, ...parts.map((part) => part.env ?? {}));
  try {
    for (const spec of [...parts.flatMap((part) => part.services ?? []), ...services]) sandbox.addService(await Service.start(sandbox, spec));
  } catch (error) {
    await sandbox.dispose();
    throw error;
  }
  return sandbox;
}
