import { SandboxError } from '../errors.js';

/** Gives back a slot. Idempotent. */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
  fail: (error: SandboxError) => void;
}

/**
 * At most `max` slots held at once; further takes wait in FIFO order. A
 * counter and a queue on the main thread, as Vitest's pools/pool.ts keeps
 * its own: a thread per slot (what this once leased from tinypool) cost
 * ~9 MB each and made every fork of a sandbox slower, only to count.
 * Sandboxes are spawned from the main thread anyway (the helper's
 * PR_SET_PDEATHSIG fires when the spawning *thread* exits).
 */
export class Slots {
  readonly #max: number;
  #held = 0;
  readonly #waiting: Waiter[] = [];
  #closed = false;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new SandboxError('BAD_OPTIONS', `slots: expected a whole number >= 1, got ${max}`);
    this.#max = max;
  }

  /** Slots taken now. */
  get held(): number {
    return this.#held;
  }

  /** Takes waiting for one. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Waits for a free slot (in FIFO order); rejects with ABORTED if `signal` fires first or the slots are closed. */
  take(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(new SandboxError('ABORTED', 'acquire was aborted'));
    if (this.#closed) return Promise.reject(new SandboxError('ABORTED', 'the pool is closed'));
    if (this.#held < this.#max) return Promise.resolve(this.#lease());
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(new SandboxError('ABORTED', 'acquire was aborted'));
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Rejects waiting takes; slots held stay held until released. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) waiter.fail(new SandboxError('ABORTED', 'the pool was closed while waiting'));
  }

  #lease(): Release {
    this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next waiter: the count never dips, so no later take jumps the queue.
      const next = this.#waiting.shift();
      if (next) next.grant(this.#handOver());
      else this.#held--;
    };
  }

  /** A lease for a slot already counted in #held. */
  #handOver(): Release {
    this.#held--;
    return this.#lease();
  }
}
