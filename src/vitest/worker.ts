import { EventEmitter } from 'node:events';
import { relative, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ResultPromise } from 'execa';
import type { PoolOptions, PoolWorker, TestProject, WorkerRequest } from 'vitest/node';
import { stopProcess } from '../process/stop.js';
import type { Lease, SandboxSource, WorkerSpec } from './sandboxes.js';

/** Like Vitest's forks pool: how long a worker gets after SIGTERM. */
const SIGKILL_AFTER_MS = 500;
/** How long a failed write into the worker waits for its exit before it is reported as the worker's error. */
const PIPE_ERROR_GRACE_MS = 1000;
/** Errors of a write into a worker that is going away. */
const PIPE_ERRORS = new Set(['EPIPE', 'ERR_IPC_CHANNEL_CLOSED']);

/** The worker process Vitest's forks pool would start, as a spec to start it in a sandbox. */
export function workerSpec(options: PoolOptions, env: Readonly<Record<string, string>>): WorkerSpec {
  return {
    file: process.execPath,
    args: [...options.execArgv, resolve(options.distPath, 'workers/forks.js')],
    cwd: options.project.config.root,
    env: options.env,
    extraEnv: env,
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
  readonly #project: TestProject;
  /** The test files Vitest gave this worker to run: their results decide whether a failed sandbox is kept. */
  readonly #files = new Set<string>();
  #lease: Lease | undefined;
  #child: ResultPromise | undefined;
  /** Vitest's 'error' listeners: the child's errors reach them through #onError. */
  readonly #errors = new EventEmitter();
  #heldError: ReturnType<typeof setTimeout> | undefined;

  constructor(name: string, options: PoolOptions, source: SandboxSource, spec: WorkerSpec) {
    this.name = name;
    this.#source = source;
    this.#spec = spec;
    this.#stdout = options.project.vitest.logger.outputStream as Writable;
    this.#stderr = options.project.vitest.logger.errorStream as Writable;
    this.#project = options.project;
  }

  // biome-ignore lint/suspicious/noExplicitAny: Vitest's PoolWorker interface types its listeners so
  on(event: string, callback: (arg: any) => void): void {
    if (event === 'error') this.#errors.on(event, callback);
    else this.#process.on(event, callback);
  }

  // biome-ignore lint/suspicious/noExplicitAny: Vitest's PoolWorker interface types its listeners so
  off(event: string, callback: (arg: any) => void): void {
    // Vitest also unsubscribes from a worker whose sandbox failed to start.
    if (event === 'error') this.#errors.off(event, callback);
    else this.#child?.off(event, callback);
  }

  send(message: WorkerRequest): void {
    if (message.type === 'run') for (const file of message.context.files) this.#files.add(file.filepath);
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
    child.on('error', (error: Error) => this.#onError(child, error));
    this.#pipe(child.stdout, this.#stdout);
    this.#pipe(child.stderr, this.#stderr);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    const lease = this.#lease;
    this.#child = undefined;
    this.#lease = undefined;
    clearTimeout(this.#heldError); // a stopped worker's pipe errors are no one's concern
    this.#heldError = undefined;
    if (child) {
      await stopProcess(child, SIGKILL_AFTER_MS);
      // Even a child that has exited may still have output in its pipes:
      // the tail of a failing test's output must reach the logger.
      await Promise.all([this.#unpipe(child.stdout, this.#stdout), this.#unpipe(child.stderr, this.#stderr)]);
    }
    const failed = lease?.keepable ? this.#failedFiles() : [];
    if (lease && failed.length) await this.#keep(lease, failed);
    else await lease?.release();
  }

  /** This worker's files that Vitest saw fail (a test, a hook, or the file itself), relative to the root. */
  #failedFiles(): string[] {
    const root = this.#project.config.root;
    return this.#project.vitest.state
      .getFiles([...this.#files])
      .filter((file) => file.result?.state === 'fail')
      .map((file) => relative(root, file.filepath));
  }

  /** Keeps the sandbox of failed files for `sandbox-run open`, and says where on stderr. */
  async #keep(lease: Lease, failed: string[]): Promise<void> {
    try {
      const { dir, note } = await lease.keep({ label: failed.join(' '), command: ['vitest', 'run', ...failed], status: 'failed' });
      this.#stderr.write(`sandbox-run: kept the sandbox of ${failed.join(', ')}: sandbox-run open ${dir}   (what it changed: sandbox-run diff ${dir})\n`);
      if (note) this.#stderr.write(`sandbox-run: ${note}\n`);
    } catch (error) {
      this.#stderr.write(`sandbox-run: could not keep the sandbox of ${failed.join(', ')}: ${(error as Error).message}\n`);
    }
  }

  /**
   * A write into a dying worker (a message on its IPC channel) fails with
   * EPIPE or a closed channel, often before the worker's 'exit' event, which
   * says more: its code, its signal, the test files it had. Hold such an
   * error and report it only if the worker is still running after a grace
   * period; drop it once the worker stops or exits. (As Vitest's forks pool.)
   */
  #onError(child: ResultPromise, error: Error): void {
    const report = (reported: Error) => {
      if (this.#errors.listenerCount('error') > 0) this.#errors.emit('error', reported);
    };
    if (!PIPE_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) {
      report(error);
      return;
    }
    if (this.#child !== child || this.#heldError) return;
    this.#heldError = setTimeout(() => {
      this.#heldError = undefined;
      if (this.#child === child && child.exitCode === null && child.signalCode === null) report(error);
    }, PIPE_ERROR_GRACE_MS).unref();
  }

  #pipe(from: NodeJS.ReadableStream | null, to: Writable): void {
    if (!from) return;
    to.setMaxListeners(to.getMaxListeners() + 1);
    from.pipe(to, { end: false });
  }

  async #unpipe(from: NodeJS.ReadableStream | null, to: Writable): Promise<void> {
    if (!from) return;
    await finished(from, { writable: false }).catch(() => undefined); // ended, or destroyed
    from.unpipe(to);
    to.setMaxListeners(to.getMaxListeners() - 1);
  }

  get #process(): ResultPromise {
    if (!this.#child) throw new Error('sandbox-run: the sandboxed Vitest worker was stopped or never started');
    return this.#child;
  }
}
