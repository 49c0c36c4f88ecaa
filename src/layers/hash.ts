import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import Tinypool from 'tinypool';

/** sha256 of a file's content, streamed on this thread. */
export async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// A tinypool task hashing a batch of files with synchronous reads: no
// event-loop round trip per read, which is what a tree of small files costs.
// Inline as a data: URL, so no compiled worker file has to be found next to
// this module (tests run the TypeScript sources).
const HASH_BATCH = `data:text/javascript,${encodeURIComponent(`
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
const buffer = Buffer.allocUnsafe(1 << 20);
export default (paths) => paths.map((path) => {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
});
`)}`;

/** Below this many files a thread's start (~15 ms) costs more than it saves. */
const THREAD_MIN_FILES = 32;
/** Tasks per thread: enough that a few big files still spread over the threads. */
const TASKS_PER_THREAD = 4;
/** Files per task at most: fewer messages for a tree of small files. */
const MAX_BATCH = 64;
const THREADS = Math.max(1, Math.min(availableParallelism(), 4));
/** Files hashed at once on this thread: reads overlap with hashing. */
const LOCAL_CONCURRENCY = 4;

let pool: Tinypool | undefined;

function hashPool(): Tinypool {
  // Threads end when idle, so a CLI run exits as soon as it is done.
  pool ??= new Tinypool({
    filename: HASH_BATCH,
    minThreads: 0,
    maxThreads: THREADS,
    idleTimeout: 1_000,
    isolateWorkers: false,
    execArgv: [],
  });
  return pool;
}

/**
 * sha256 of many files under `root`, by path. Node's OpenSSL uses the CPU's
 * SHA instructions; worker threads add the other cores (measured in
 * bench/tree.ts: faster than the openssl CLI it replaces, on small and big files).
 */
export async function hashFiles(root: string, paths: readonly string[]): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  if (paths.length < THREAD_MIN_FILES) {
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const path = paths[next++]!;
        hashes.set(path, await fileHash(join(root, path)));
      }
    };
    await Promise.all(Array.from({ length: LOCAL_CONCURRENCY }, worker));
    return hashes;
  }
  const tasks: Promise<void>[] = [];
  const size = Math.min(MAX_BATCH, Math.ceil(paths.length / (THREADS * TASKS_PER_THREAD)));
  for (let i = 0; i < paths.length; i += size) {
    const batch = paths.slice(i, i + size);
    tasks.push(
      hashPool()
        .run(batch.map((path) => join(root, path)))
        .then((sums: string[]) => batch.forEach((path, k) => hashes.set(path, sums[k]!))),
    );
  }
  await Promise.all(tasks);
  return hashes;
}
