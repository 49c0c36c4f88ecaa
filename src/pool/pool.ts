import { MessageChannel } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import Tinypool from 'tinypool';
import { SandboxError } from '../errors.js';
import type { Preset } from '../presets/types.js';
import type { CreateSandboxOptions } from '../sandbox/create.js';
import { normalizeOptions } from '../sandbox/options.js';
import { Sandbox } from '../sandbox/sandbox.js';
import type { HeldSandbox, HoldTask } from './worker.js';

/** The compiled task module (worker threads load JavaScript; dist/ is built on install). */
const WORKER = fileURLToPath(new URL('../../dist/pool/worker.js', import.meta.url));

export interface PoolOptions extends CreateSandboxOptions {
  /** Sandboxes kept ready ahead of demand (default 2). */
  size?: number;
  /** Most sandboxes alive at once, ready plus handed out (default size + cores). Further acquires wait. */
  max?: number;
}

interface Pending {
  sandbox: Promise<Sandbox>;
}

/**
 * Warm sandboxes: `size` of them are created ahead of demand with their
 * services ready, so `acquire()` hands out a pristine one at once. Each is
 * used once: disposing it destroys it, and the pool starts a replacement in
 * the background.
 *
 * tinypool is the engine: one task per live sandbox holds it in a worker
 * thread, so tinypool's thread limit is the pool's concurrency limit, its
 * queue is the queue of waiting acquires, and its AbortSignal support
 * cancels an acquire that is still waiting.
 */
export class SandboxPool implements AsyncDisposable {
  readonly #tinypool: Tinypool;
  readonly #options: Omit<CreateSandboxOptions, 'presets'>;
  readonly #presets: readonly Preset[];
  readonly #size: number;
  readonly #ready: Pending[] = [];
  readonly #live = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(options: PoolOptions) {
    const { size = 2, max, presets = [], ...sandboxOptions } = options;
    this.#size = size;
    this.#presets = presets;
    this.#options = sandboxOptions;
    const threads = Math.max(1, max ?? size + availableParallelism());
    this.#tinypool = new Tinypool({ filename: WORKER, minThreads: 0, maxThreads: threads, isolateWorkers: false, idleTimeout: 60_000 });
  }

  /** Builds what the presets need, then fills the pool. */
  static async create(options: PoolOptions = {}): Promise<SandboxPool> {
    normalizeOptions(options); // bad options fail here, not in a worker thread
    const pool = new SandboxPool(options);
    await Promise.all(pool.#presets.map((preset) => preset.prepare()));
    pool.#refill();
    return pool;
  }

  /** Hands out a pristine sandbox: a ready one at once, else the next one created. */
  async acquire(options: { signal?: AbortSignal } = {}): Promise<Sandbox> {
    if (this.#closed) throw new SandboxError('SANDBOX_EXITED', 'the pool is closed');
    options.signal?.throwIfAborted();
    const next = this.#ready.shift() ?? this.#start(options.signal);
    this.#refill();
    return next.sandbox;
  }

  /** Stops refilling, destroys ready and handed-out sandboxes, and ends the worker threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ready = this.#ready.splice(0);
    await Promise.allSettled(ready.map(async ({ sandbox }) => (await sandbox).dispose()));
    // Handed-out sandboxes die with their threads (parent-death signal).
    await this.#tinypool.destroy();
    await Promise.allSettled([...this.#live]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #refill(): void {
    while (!this.#closed && this.#ready.length < this.#size) {
      const pending = this.#start();
      // A failed warm sandbox surfaces at acquire(); keep it from being unhandled meanwhile.
      pending.sandbox.catch(() => undefined);
      this.#ready.push(pending);
    }
  }

  #start(signal?: AbortSignal): Pending {
    const parts = this.#presets.map((preset) => preset.forSandbox());
    const options = {
      ...this.#options,
      overlays: [...(this.#options.overlays ?? []), ...parts.flatMap((p) => p.overlays ?? [])],
      binds: [...(this.#options.binds ?? []), ...parts.flatMap((p) => p.binds ?? [])],
      services: [...parts.flatMap((p) => p.services ?? []), ...(this.#options.services ?? [])],
      env: { ...this.#options.env },
    };
    const env = Object.assign({}, ...parts.map((p) => p.env ?? {})) as Record<string, string>;
    const cleanup = () => parts.forEach((part) => part.cleanup?.());
    const { port1, port2 } = new MessageChannel();
    const task = this.#tinypool.run({ options, port: port2 } satisfies HoldTask, { transferList: [port2], ...(signal ? { signal } : {}) });
    this.#live.add(task);
    const ended = task.finally(() => {
      this.#live.delete(task);
      port1.close();
      cleanup();
    });
    ended.catch(() => undefined);
    const sandbox = new Promise<Sandbox>((resolve, reject) => {
      port1.once('message', (held: HeldSandbox) =>
        resolve(
          Sandbox.adopt(held.pid, normalizeOptions(options), { ...env, ...held.env }, {
            ended,
            async stop() {
              port1.postMessage('release');
              await ended.catch(() => undefined);
            },
          }),
        ),
      );
      task.catch((error: unknown) => reject(signal?.aborted ? new SandboxError('ABORTED', 'acquire was aborted') : error));
    });
    return { sandbox };
  }
}

/**
 * A pool of warm sandboxes.
 *
 * ```ts
 * await using pool = await createPool({ presets: [postgres({ seed })], size: 4 });
 * await using sb = await pool.acquire();
 * ```
 */
export function createPool(options: PoolOptions = {}): Promise<SandboxPool> {
  return SandboxPool.create(options);
}
