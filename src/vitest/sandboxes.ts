import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../sandbox/sandbox.js';
import type { SandboxPoolOptions, WorkerSandboxOptions } from './options.js';
import { writeBack } from './write-back.js';

/** A sandbox lent to one worker, with the host directory of its project overlay's writable layer. */
export interface Lease {
  readonly sandbox: Sandbox;
  /** Variables `prepare` returned for the worker. */
  readonly env: Readonly<Record<string, string>>;
  /** Ends the sandbox, copies the wanted writes back to the host and removes the layer. */
  release(): Promise<string[]>;
}

export interface SandboxSourceOptions {
  /** The project root: copy-on-write inside, at the same path. */
  root: string;
  sandbox: WorkerSandboxOptions;
  wanted: (relative: string) => boolean;
  /** How many sandboxes to keep created ahead of demand. */
  warm: number;
  upperRoot?: string;
  prepare?: SandboxPoolOptions['prepare'];
}

/**
 * Creates the sandboxes of one project's workers and keeps `warm` of them
 * ready, so a worker's start costs only the join. Each sandbox is used once.
 */
export class SandboxSource {
  readonly #options: SandboxSourceOptions;
  readonly #ready: Promise<Lease>[] = [];
  #closed = false;

  constructor(options: SandboxSourceOptions) {
    this.#options = options;
  }

  /** A pristine sandbox; rejects with the helper's reason when it cannot start. */
  acquire(): Promise<Lease> {
    if (this.#closed) return Promise.reject(new Error('sandbox-run: the Vitest sandbox pool is closed'));
    const lease = this.#ready.shift() ?? this.#create();
    while (this.#ready.length < this.#options.warm) {
      const next = this.#create();
      next.catch(() => {}); // surfaced by acquire() to the worker that takes it
      this.#ready.push(next);
    }
    return lease;
  }

  /** Ends the sandboxes still waiting; leases already given out stay with their workers. */
  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready.splice(0);
    await Promise.allSettled(ready.map(async (lease) => (await lease).release()));
  }

  async #create(): Promise<Lease> {
    const { root, sandbox, wanted, upperRoot, prepare } = this.#options;
    const dir = await mkdtemp(join(upperRoot ?? tmpdir(), 'sandbox-run-vitest-'));
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    try {
      await Promise.all([mkdir(upper), mkdir(work)]);
      // The overlay root takes its mode from the upper dir: keep the root's.
      await chmod(upper, (await stat(root)).mode & 0o7777);
      const sb = await Sandbox.create({
        ...sandbox,
        cwd: root,
        // The root is mounted as our own overlay (not 'cow') so that its
        // writable layer is on the host, where write-back can read it.
        workdir: 'none',
        overlays: [{ lower: root, target: root, upper: { upper, work } }, ...(sandbox.overlays ?? [])],
      });
      let released: Promise<string[]> | undefined;
      const release = async () => {
        try {
          await sb.dispose();
          return await writeBack(upper, root, wanted);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      };
      let env: Readonly<Record<string, string>> = {};
      try {
        env = (await prepare?.(sb)) ?? {};
      } catch (error) {
        await release();
        throw error;
      }
      return { sandbox: sb, env, release: () => (released ??= release()) };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }
}
