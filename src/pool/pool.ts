import { SandboxError } from '../errors.js';
import { type CreateSandboxOptions, createSandbox } from '../sandbox/create.js';
import { normalizeOptions } from '../sandbox/options.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { type LayerMount, type LayerSource, resolveLayers } from './layers.js';
import { Slots } from './slots.js';

export interface PoolOptions extends CreateSandboxOptions {
  /** Sandboxes kept ready ahead of demand (default 2). */
  size?: number;
  /** Most sandboxes handed out at once (default: size, at least 1). Further acquires wait in a queue. */
  max?: number;
  /**
   * How many sandboxes will be acquired in all, when known (a run of N jobs):
   * the pool starts no more ahead of demand, so the last acquires leave no
   * replacements to start and throw away (each costs a server start). An
   * acquire past it still gets a sandbox, started then. Default: no end.
   */
  total?: number;
  /** Layers from the layer store, each mounted copy-on-write at its target. */
  layers?: readonly LayerMount[];
  /** Where `layers` are looked up (default: the layer store in $SANDBOX_RUN_HOME). */
  store?: LayerSource;
  /**
   * Runs on every sandbox after its services are ready and before it counts
   * as ready, off the acquire path: e.g. open the big tables once, so that
   * overlayfs copies them up before a test waits for it.
   */
  warmup?: (sandbox: Sandbox) => Promise<unknown>;
}

export interface AcquireOptions {
  /** Cancels the acquire while it waits for a slot or for a sandbox to become ready. */
  signal?: AbortSignal;
}

/** A sandbox whose services may have died while it waited in the pool is not handed out. */
function healthy(sandbox: Sandbox): boolean {
  return sandbox.alive && sandbox.services.every((service) => service.running);
}

/**
 * Warm sandboxes: `size` of them are created ahead of demand with their
 * services ready, so `acquire()` hands out a pristine one at once and the
 * pool starts its replacement in the background. Each is used once:
 * disposing it destroys it and frees its slot.
 *
 * Sandboxes are created on the calling (main) thread; Slots counts the
 * ones handed out and queues the acquires beyond `max`.
 */
export class SandboxPool implements AsyncDisposable {
  readonly #options: CreateSandboxOptions;
  readonly #warmup: ((sandbox: Sandbox) => Promise<unknown>) | undefined;
  readonly #size: number;
  readonly #slots: Slots;
  /** Ready or still starting, oldest first. */
  readonly #ready: Promise<Sandbox>[] = [];
  readonly #lent = new Set<Sandbox>();
  readonly #releaseLayers: () => void;
  readonly #total: number;
  /** Sandboxes started so far, handed out or not. */
  #started = 0;
  #closed: Promise<void> | undefined;

  private constructor(
    options: CreateSandboxOptions,
    sizes: { size: number; max: number; total: number },
    releaseLayers: () => void,
    warmup?: (sandbox: Sandbox) => Promise<unknown>,
  ) {
    this.#options = options;
    this.#warmup = warmup;
    this.#releaseLayers = releaseLayers;
    this.#size = sizes.size;
    this.#total = sizes.total;
    this.#slots = new Slots(sizes.max);
  }

  /** Validates options, prepares presets and layers, then starts filling the pool. */
  static async create(options: PoolOptions = {}): Promise<SandboxPool> {
    const { size = 2, max, total = Number.POSITIVE_INFINITY, layers = [], store, warmup, ...sandboxOptions } = options;
    if (total !== Number.POSITIVE_INFINITY && (!Number.isInteger(total) || total < 0))
      throw new SandboxError('BAD_OPTIONS', `pool total: expected a whole number >= 0, got ${total}`);
    if (!Number.isInteger(size) || size < 0) throw new SandboxError('BAD_OPTIONS', `pool size: expected a whole number >= 0, got ${size}`);
    const limit = max ?? Math.max(1, size);
    if (!Number.isInteger(limit) || limit < 1) throw new SandboxError('BAD_OPTIONS', `pool max: expected a whole number >= 1, got ${max}`);
    const { overlays, release } = await resolveLayers(layers, store);
    // Warm and leased sandboxes live at once: the default tmpfs sizes share the memory budget between them.
    const resolved = { concurrency: limit + size, ...sandboxOptions, overlays: [...(sandboxOptions.overlays ?? []), ...overlays] };
    try {
      normalizeOptions(resolved); // bad options fail here, not at the first acquire
      await Promise.all((resolved.presets ?? []).map((preset) => preset.prepare()));
    } catch (error) {
      release();
      throw error;
    }
    const pool = new SandboxPool(resolved, { size, max: limit, total }, release, warmup);
    pool.#refill();
    return pool;
  }

  /** Sandboxes ready to hand out right now. */
  get idle(): number {
    return this.#ready.length;
  }

  /** Resolves once `size` sandboxes are ready (rejects if one fails to start). */
  async warm(): Promise<void> {
    await Promise.all(this.#ready);
  }

  /**
   * Hands out a pristine sandbox: a ready one at once, else the next one
   * started. Waits while `max` are handed out. Dispose it when done.
   */
  async acquire(options: AcquireOptions = {}): Promise<Sandbox> {
    const { signal } = options;
    if (this.#closed) throw new SandboxError('ABORTED', 'the pool is closed');
    const release = await this.#slots.take(signal);
    try {
      const sandbox = await this.#next(signal);
      this.#lent.add(sandbox);
      sandbox.onDispose(() => {
        this.#lent.delete(sandbox);
        release();
      });
      return sandbox;
    } catch (error) {
      release();
      throw error;
    } finally {
      // After the caller has its sandbox: spawning the replacement costs a few ms.
      setImmediate(() => this.#refill());
    }
  }

  /** Stops refilling; rejects waiting acquires; destroys ready, starting and handed-out sandboxes. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #next(signal: AbortSignal | undefined): Promise<Sandbox> {
    for (;;) {
      const pending = this.#ready.shift() ?? this.#start();
      const sandbox = await this.#orAbort(pending, signal);
      if (this.#closed) {
        await sandbox.dispose();
        throw new SandboxError('ABORTED', 'the pool was closed while waiting');
      }
      if (healthy(sandbox)) return sandbox;
      await sandbox.dispose(); // its service died while it waited: take the next one
    }
  }

  /** Waits for `pending`; on abort, leaves it first in line for the next acquire. */
  #orAbort(pending: Promise<Sandbox>, signal: AbortSignal | undefined): Promise<Sandbox> {
    if (!signal) return pending;
    return new Promise<Sandbox>((resolve, reject) => {
      const onAbort = () => {
        this.#ready.unshift(pending);
        reject(new SandboxError('ABORTED', 'acquire was aborted'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  #start(): Promise<Sandbox> {
    this.#started++;
    const warmup = this.#warmup;
    const pending = createSandbox(this.#options).then(async (sandbox) => {
      try {
        await warmup?.(sandbox);
        return sandbox;
      } catch (error) {
        await sandbox.dispose();
        throw error;
      }
    });
    pending.catch(() => undefined); // surfaces at the acquire that takes it
    return pending;
  }

  #refill(): void {
    while (!this.#closed && this.#ready.length < this.#size && this.#started < this.#total) this.#ready.push(this.#start());
  }

  async #close(): Promise<void> {
    const ready = this.#ready.splice(0);
    this.#slots.close();
    await Promise.allSettled([...ready.map(async (pending) => (await pending).dispose()), ...[...this.#lent].map((sandbox) => sandbox.dispose())]);
    this.#releaseLayers();
  }
}

/**
 * A pool of warm sandboxes.
 *
 * ```ts
 * await using pool = await createPool({ presets: [postgres({ seed: { sql: ['seed.sql'] } })], size: 4 });
 * await using sb = await pool.acquire();
 * const client = new pg.Client(sb.env.DATABASE_URL);
 * ```
 */
export function createPool(options: PoolOptions = {}): Promise<SandboxPool> {
  return SandboxPool.create(options);
}
