import { MessageChannel } from 'node:worker_threads';
import Tinypool from 'tinypool';
import { SandboxError } from '../errors.js';

// A tinypool task that holds one slot: it says "granted" once it runs and
// ends when told to. Inline as a data: URL, so no compiled worker file has to
// be found next to this module (tests run the TypeScript sources).
const HOLD = `data:text/javascript,${encodeURIComponent(
  "export default ({ port }) => new Promise((resolve) => { port.once('message', () => { port.close(); resolve(null); }); port.postMessage('granted'); });",
)}`;

/** Gives back a slot. Idempotent. */
export type Release = () => void;

/**
 * Lease slots on tinypool: its thread limit is the concurrency limit, its
 * task queue the queue of waiting acquires, its AbortSignal support the way
 * a waiting acquire is cancelled. A lease is one running task; the task
 * holds nothing but the slot.
 *
 * Sandboxes are never spawned from these threads: the helper's
 * PR_SET_PDEATHSIG fires when the spawning *thread* exits, and tinypool ends
 * threads when they idle, when an abort hits a running task, and on
 * destroy(). Spawned from the main thread, a sandbox lives until it is
 * disposed or the whole process exits, whatever tinypool does.
 */
export class Slots {
  readonly #tinypool: Tinypool;
  #closed = false;

  /** `max` slots; `eager` of their threads start now (a thread costs ~9 MB; one starting costs a lease tens of ms). */
  constructor(max: number, eager = max) {
    // No execArgv: the threads run no user code, and inheriting the process's
    // (--input-type, a TypeScript loader) breaks or slows their start.
    this.#tinypool = new Tinypool({
      filename: HOLD,
      minThreads: Math.min(max, eager),
      maxThreads: max,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      isolateWorkers: false,
      execArgv: [],
    });
  }

  /** Waits for a free slot (in FIFO order); rejects with ABORTED if `signal` fires first or the slots are closed. */
  async take(signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    if (this.#closed) throw new SandboxError('ABORTED', 'the pool is closed');
    const { port1, port2 } = new MessageChannel();
    // tinypool's abort also terminates a *running* task's thread: forward the
    // caller's signal only while the lease is still waiting.
    const waiting = new AbortController();
    const forward = () => waiting.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    const task = this.#tinypool.run({ port: port2 }, { transferList: [port2], signal: waiting.signal });
    task.catch(() => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        port1.once('message', () => resolve());
        task.then(() => reject(new Error('slot task ended early')), reject);
      });
    } catch (error) {
      port1.close();
      if (signal?.aborted) throw new SandboxError('ABORTED', 'acquire was aborted');
      if (this.#closed) throw new SandboxError('ABORTED', 'the pool was closed while waiting');
      throw error;
    } finally {
      signal?.removeEventListener('abort', forward);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      port1.postMessage('release');
      port1.close();
    };
  }

  /** Rejects waiting leases and ends the threads. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tinypool.destroy();
  }
}
