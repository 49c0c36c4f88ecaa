/**
 * The store's download cache, `<store>/downloads/`: a blob being fetched
 * is `<hex>.partial` (appended to, resumed with a Range request by the next
 * pull), a blob fetched and verified is `<hex>` until its layer is
 * committed. `<hex>.lock` (a pid file) keeps two pulls off one blob, and
 * prune off a blob being fetched.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SandboxError } from '../../errors.js';
import { processAlive } from '../../process/alive.js';
import { withLock } from '../lock.js';
import type { Descriptor } from '../oci-index.js';
import type { RegistryClient } from './client.js';
import { NetworkError } from './http.js';

export const downloadsDir = (storeDir: string) => join(storeDir, 'downloads');

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/** `bytes 100-199/200` -> 100. */
const rangeStart = (header: string | undefined) => Number(/^bytes (\d+)-/.exec(header ?? '')?.[1] ?? NaN);

/**
 * Fetches a blob into the cache (or finds it there, or resumes its partial
 * download), checking its size and sha256 as it streams in. Returns a hard
 * link to the verified file in `into`. A broken-off download stays as `.partial`; a wrong one is
 * deleted.
 */
export async function downloadBlob(
  client: RegistryClient,
  storeDir: string,
  blob: Descriptor,
  what: string,
  into: string,
  progress: (bytes: number, resumed: boolean) => void = () => undefined,
): Promise<string> {
  const dir = downloadsDir(storeDir);
  mkdirSync(dir, { recursive: true });
  const hex = blob.digest.slice('sha256:'.length);
  const done = join(dir, hex);
  const partial = `${done}.partial`;
  // The caller's own hard link (in its staging dir, on the same filesystem): another pull
  // committing the same blob and deleting it from the cache cannot take it away mid-extraction.
  const mine = join(into, `blob-${hex}`);
  const claim = () => {
    rmSync(mine, { force: true });
    linkSync(done, mine);
    return mine;
  };
  return withLock(`${done}.lock`, async () => {
    // Fetched before and not committed (the pull failed later, or another pull has it): the extraction checks its digest again.
    if (existsSync(done) && statSync(done).size === blob.size) {
      progress(blob.size, true);
      return claim();
    }
    let offset = existsSync(partial) ? statSync(partial).size : 0;
    if (offset >= blob.size) {
      rmSync(partial, { force: true });
      offset = 0;
    }
    const res = await client.get(`blobs/${blob.digest}`, offset ? { range: `bytes=${offset}-` } : {});
    if (res.status === 206 && rangeStart(String(res.headers['content-range'] ?? '')) !== offset) {
      res.body.destroy();
      throw new NetworkError(client.registry, `asked for ${what} from byte ${offset}, got ${String(res.headers['content-range'])}`);
    }
    if (res.status === 200)
      offset = 0; // no Range support: from the start
    else if (res.status !== 206) await client.fail(res, what);
    const hash = createHash('sha256');
    if (offset) await hashFile(partial, hash);
    let size = offset;
    progress(size, offset > 0);
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        // More than the descriptor says: a hostile or broken server, stopped before it fills the disk.
        if (size > blob.size) return callback(new SandboxError('BAD_OPTIONS', `size mismatch: ${what} from ${client.registry} is over its ${blob.size} bytes`));
        hash.update(chunk);
        progress(size, false);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(res.body, count, createWriteStream(partial, { flags: offset ? 'a' : 'w' }));
    } catch (error) {
      if (error instanceof SandboxError) {
        rmSync(partial, { force: true });
        throw error;
      }
      // Kept for the next pull to resume.
      throw new NetworkError(client.registry, `the download of ${what} broke off at byte ${size} of ${blob.size}: ${(error as Error).message}`);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    if (size !== blob.size || digest !== blob.digest) {
      rmSync(partial, { force: true });
      const why = size !== blob.size ? `it has ${size} bytes, the manifest says ${blob.size}` : `its content is ${digest}`;
      throw new SandboxError('BAD_OPTIONS', `digest mismatch: ${what} from ${client.registry} should be ${blob.digest}, ${why}`);
    }
    renameSync(partial, done);
    return claim();
  });
}

/** Removes a blob from the cache once its layer is in the store. */
export function forgetBlob(storeDir: string, digest: string): void {
  rmSync(join(downloadsDir(storeDir), digest.slice('sha256:'.length)), { force: true });
}

/** Deletes every cached blob and partial download no live pull holds; returns their paths. */
export function pruneDownloads(storeDir: string): string[] {
  const dir = downloadsDir(storeDir);
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir);
  // A lock names the pid fetching that blob (lock.ts); a dead one's is stale.
  const held = (hex: string) => {
    try {
      return processAlive(Number(readFileSync(join(dir, `${hex}.lock`), 'utf8')));
    } catch {
      return false;
    }
  };
  const removed: string[] = [];
  for (const name of names) {
    const hex = name.slice(0, 64);
    if (name.endsWith('.lock') || held(hex)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  for (const name of names) if (name.endsWith('.lock') && !held(name.slice(0, 64))) rmSync(join(dir, name), { force: true });
  return removed;
}
