import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { ResultPromise } from 'execa';
import type { PoolOptions, PoolWorker, WorkerRequest } from 'vitest/node';
import type { Lease, SandboxSource, WorkerSpec } from './sandboxes.js';

/** Like Vitest's forks pool: how long a worker gets after SIGTERM. */
const SIGKILL_AFTER_MS = 500;

/** The worker process Vitest's forks pool would start, as a spec to start it in a sandbox. */
export function workerSpec(options: PoolOptions, env: Readonly<Record<string, string>>): WorkerSpec {
  return {
    file: process.execPath,
    args: [...options.execArgv, resolve(options.distPath, 'workers/forks.js')],
    cwd: options.project.config.root,
    env: { ...options.env, ...env },
  };
}

/**
 * One Vitest worker: Vitest's own fork worker (`workers/forks.js`) started
 * through the helper inside a sandbox. The helper passes the IPC channel (fd 3,
 * `NODE_CHANNEL_FD`) through, so Vitest talks to it exactly as to a `forks`
 * worker. The sandbox lives as long as the worker: with `isolate: true` that is
 * one test file, with `isolate: false` all the files Vitest gives it.
 */
export class SandboxPoolWorker implements PoolWorker {
  readonly name: string;
  // The fs module cache hands workers paths of files under the host's /tmp,
  // which a sandbox's private /tmp hides: send code over IPC instead.
  readonly cacheFs = false;
  readonly #source: SandboxSource;
  readonly #spec: WorkerSpec;
  readonly #stdout: Writable;
  readonly #stderr: Writable;
  #lease: Lease | undefined;
  #child: ResultPromise | undefined;

  constructor(name: string, options: PoolOptions, source: SandboxSource, spec: WorkerSpec) {
    this.name = name;
    this.#source = source;
    this.#spec = spec;
    this.#stdout = options.project.vitest.logger.outputStream as Writable;
    this.#stderr = options.project.vitest.logger.errorStream as Writable;
  }

  on(event: string, callback: (arg: any) => void): void {
    this.#process.on(event, callback);
  }

  off(event: string, callback: (arg: any) => void): void {
    // Vitest also unsubscribes from a worker whose sandbox failed to start.
    this.#child?.off(event, callback);
  }

  send(message: WorkerRequest): void {
    this.#process.send(message);
  }

  deserialize(data: unknown): unknown {
    return data; // 'advanced' serialization already gives structured clones
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const lease = await this.#source.acquire();
    this.#lease = lease;
    let child: ResultPromise;
    try {
      child = lease.worker(this.#spec);
    } catch (error) {
      this.#lease = undefined;
      await lease.release();
      throw error;
    }
    this.#child = child;
    this.#pipe(child.stdout, this.#stdout);
    this.#pipe(child.stderr, this.#stderr);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    const lease = this.#lease;
    this.#child = undefined;
    this.#lease = undefined;
    if (child) {
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), SIGKILL_AFTER_MS);
        child.kill('SIGTERM');
        await child;
        clearTimeout(timer);
      }
      this.#unpipe(child.stdout, this.#stdout);
      this.#unpipe(child.stderr, this.#stderr);
    }
    await lease?.release();
  }

  #pipe(from: NodeJS.ReadableStream | null, to: Writable): void {
    if (!from) return;
    to.setMaxListeners(to.getMaxListeners() + 1);
    from.pipe(to, { end: false });
  }

  #unpipe(from: NodeJS.ReadableStream | null, to: Writable): void {
    if (!from) return;
    from.unpipe(to);
    to.setMaxListeners(to.getMaxListeners() - 1);
  }

  get #process(): ResultPromise {
    if (!this.#child) throw new Error('sandbox-run: the sandboxed Vitest worker was stopped or never started');
    return this.#child;
  }
}
