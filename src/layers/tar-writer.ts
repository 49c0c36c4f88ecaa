import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { Header, Pax } from 'tar';

/** One archive entry; `file` is read from disk for a regular file. */
export interface TarEntry {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  mode: number;
  mtime: Date;
  size?: number;
  linkpath?: string;
  /** Host file whose content is the entry's data. */
  file?: string;
  /** In-memory data. */
  data?: Buffer;
}

const CHUNK = 1 << 20;
/** Bytes queued before waiting for the disk: reading the next chunk overlaps writing this one. */
const BUFFER = 8 << 20;

/**
 * A sequential tar writer built on node-tar's header and pax encoders.
 * (node-tar's Pack stalled now and then when fed paths one by one; this
 * writes entries in exactly the order given, with backpressure.)
 */
export class TarWriter {
  readonly #out: Writable;
  readonly #closed: Promise<void>;
  readonly #sink: Writable;

  constructor(file: string, gzip: boolean) {
    const stream = createWriteStream(file, { highWaterMark: BUFFER });
    this.#closed = new Promise((resolve, reject) => {
      stream.on('close', resolve).on('error', reject);
    });
    if (gzip) {
      const zip = createGzip({ level: 1 });
      zip.pipe(stream);
      this.#out = zip;
    } else this.#out = stream;
    this.#sink = stream;
  }

  #write(chunk: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#sink.errored) return reject(this.#sink.errored);
      if (this.#out.write(chunk)) resolve();
      else this.#out.once('drain', resolve);
    });
  }

  async add(entry: TarEntry): Promise<void> {
    const size = entry.type === 'File' ? (entry.data?.length ?? entry.size ?? 0) : 0;
    const fields = {
      path: entry.path,
      type: entry.type,
      mode: entry.mode & 0o7777,
      uid: 0,
      gid: 0,
      size,
      mtime: entry.mtime,
      ...(entry.linkpath ? { linkpath: entry.linkpath } : {}),
    };
    const header = new Header(fields);
    header.encode();
    if (header.needPax) await this.#write(new Pax({ ...fields, atime: undefined, ctime: undefined }).encode());
    await this.#write(header.block!);
    if (entry.type !== 'File' || size === 0) return;
    if (entry.data) await this.#write(entry.data);
    else {
      const handle = await open(entry.file!, 'r');
      try {
        let done = 0;
        while (done < size) {
          const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(Math.min(CHUNK, size - done)), 0, Math.min(CHUNK, size - done), done);
          if (bytesRead === 0) throw new Error(`${entry.file} shrank while being archived`);
          await this.#write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
    }
    const pad = (512 - (size % 512)) % 512;
    if (pad) await this.#write(Buffer.alloc(pad));
  }

  /** Writes the end-of-archive blocks and waits until the file is closed. */
  async end(): Promise<void> {
    await this.#write(Buffer.alloc(1024));
    this.#out.end();
    await this.#closed;
  }
}
