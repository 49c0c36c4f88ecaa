import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { PoolOptions } from 'vitest/node';
import { SandboxSource, type WorkerSpec } from '../../src/vitest/sandboxes.js';
import { SandboxPoolWorker } from '../../src/vitest/worker.js';
import { tempDir } from './support.js';

/** A logger stream that takes nothing in until opened: the worker's pipe backs up meanwhile. */
class GatedStream extends Writable {
  received = '';
  #held: (() => void)[] = [];
  #open = false;
  constructor() {
    super({ highWaterMark: 1 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.received += chunk.toString();
    if (this.#open) callback();
    else this.#held.push(callback);
  }
  open(): void {
    this.#open = true;
    for (const callback of this.#held.splice(0)) callback();
  }
}

const upper = tempDir('sandbox-run-worker-test-');
afterAll(() => upper.remove());

/** A SandboxPoolWorker as the pool plugin makes it, with only the logger streams Vitest's options give it. */
function worker(file: string, args: string[], stdout: Writable) {
  const source = new SandboxSource({ root: upper.path, sandbox: {}, wanted: () => false, warm: 0, upperRoot: upper.path });
  const options = { project: { vitest: { logger: { outputStream: stdout, errorStream: new GatedStream() } } } } as unknown as PoolOptions;
  const spec: WorkerSpec = { file, args, cwd: '/', env: { PATH: '/usr/bin:/bin' } };
  return { worker: new SandboxPoolWorker('sandbox-test', options, source, spec), close: () => source.close() };
}

describe('SandboxPoolWorker', () => {
  it('passes on all the output of a worker that exited before it was stopped', async () => {
    // More than one read of the pipe (64 KiB) and less than the pipe and the
    // stream's buffer hold together: the worker can exit with part of its
    // output still unread behind the backed-up logger.
    const size = 72 * 1024;
    const stdout = new GatedStream();
    const { worker: w, close } = worker('/bin/sh', ['-c', `head -c ${size} /dev/zero | tr '\\0' x; echo END`], stdout);
    try {
      await w.start();
      await new Promise((resolve) => w.on('exit', resolve));
      const stopped = w.stop();
      stdout.open();
      await stopped;
      expect(stdout.received.length).toBe(size + 4);
      expect(stdout.received.endsWith('xEND\n')).toBe(true);
    } finally {
      await close();
    }
  });

  it('holds a write error of a worker that is going away, and drops it once the worker stops', async () => {
    const { worker: w, close } = worker('/bin/sh', ['-c', 'exit 0'], new GatedStream());
    const errors: Error[] = [];
    try {
      await w.start();
      w.on('error', (error: Error) => errors.push(error));
      const exited = new Promise((resolve) => w.on('exit', resolve));
      // The helper holds the channel until it exits; then a message to the
      // worker fails (ERR_IPC_CHANNEL_CLOSED, on the next tick).
      await new Promise((resolve) => w.on('disconnect', resolve));
      w.send({ type: 'stop' } as never);
      await exited;
      await w.stop();
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });
});
