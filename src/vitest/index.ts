/**
 * sandbox-run/vitest: a Vitest pool that runs every worker in its own sandbox.
 *
 * ```ts
 * import { defineConfig } from 'vitest/config';
 * import { sandboxPool } from 'sandbox-run/vitest';
 * export default defineConfig({ test: { pool: sandboxPool() } });
 * ```
 */
import type { PoolRunnerInitializer, TestProject } from 'vitest/node';
import { DEFAULT_WRITE_BACK, type SandboxPoolOptions, writeBackMatcher } from './options.js';
import { SandboxSource, type WorkerSpec } from './sandboxes.js';
import { SandboxPoolWorker, workerSpec } from './worker.js';

export type { SandboxPoolOptions, WorkerSandboxOptions } from './options.js';

/** The pool's name, as Vitest reports it (`pool: 'sandbox'`). */
export const POOL_NAME = 'sandbox';

/**
 * A Vitest pool (`test.pool`) whose workers are Vitest's fork workers, each
 * in a fresh sandbox: a copy-on-write view of the project, a private /tmp,
 * pid and network namespace. Snapshots and other declared outputs are copied
 * back to the host when the worker ends. Works with Vitest 4.1 and 5.
 */
export function sandboxPool(options: SandboxPoolOptions = {}): PoolRunnerInitializer {
  const wanted = writeBackMatcher(options.writeBack ?? DEFAULT_WRITE_BACK);
  const sources = new WeakMap<TestProject, SandboxSource>();

  const sourceFor = (project: TestProject, spec: WorkerSpec): SandboxSource => {
    let source = sources.get(project);
    if (!source) {
      const maxWorkers = project.config.maxWorkers ?? project.vitest.config.maxWorkers ?? 1;
      source = new SandboxSource({
        root: project.config.root,
        // Each worker and each warm sandbox is one sandbox alive at once.
        sandbox: { concurrency: maxWorkers + Math.max(0, options.warm ?? maxWorkers), ...options.sandbox },
        wanted,
        warm: Math.max(0, options.warm ?? maxWorkers),
        keepFailed: options.keepFailed ?? process.env.SANDBOX_RUN_KEEP_FAILED === '1',
        ...(options.upperRoot ? { upperRoot: options.upperRoot } : {}),
        ...(options.prepare ? { prepare: options.prepare } : {}),
        ...(options.presets ? { presets: options.presets } : {}),
        ...(options.services ? { services: options.services } : {}),
        ...(options.layers ? { layers: options.layers } : {}),
        ...(options.store ? { store: options.store } : {}),
        ...(options.startEarly === false ? {} : { worker: spec }),
      });
      sources.set(project, source);
      const created = source;
      // Vitest has no pool-close hook for custom pools: the idle warm
      // sandboxes are ended when Vitest closes.
      project.vitest.onClose(() => created.close());
    }
    return source;
  };

  return {
    name: POOL_NAME,
    createPoolWorker: (poolOptions) => {
      const spec = workerSpec(poolOptions, options.env ?? {});
      return new SandboxPoolWorker(POOL_NAME, poolOptions, sourceFor(poolOptions.project, spec), spec);
    },
  };
}
