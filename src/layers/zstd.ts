import { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';

/**
 * A zstd decompressing stream. Node's zlib has one from 22.15 on (native,
 * fastest); on Node 20 fzstd, a dependency-free pure-JS streaming decoder
 * (by fflate's author), does the work: no native build, no binary download.
 */
export function createZstdDecompress(): Transform {
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (native) return native();
  let decoder: Decompress | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        decoder ??= new Decompress((data) => {
          // A copy: the decoder may reuse its window buffer for the next block.
          if (data.length) this.push(Buffer.from(data));
        });
        decoder.push(chunk);
        callback();
      } catch (error) {
        callback(new Error(`bad zstd data: ${(error as Error).message}`));
      }
    },
    flush(callback) {
      try {
        // An empty final push ends the frame; fzstd throws if it is incomplete.
        decoder?.push(new Uint8Array(0), true);
        callback(decoder ? null : new Error('bad zstd data: empty stream'));
      } catch (error) {
        callback(new Error(`bad zstd data: ${(error as Error).message} (truncated?)`));
      }
    },
  });
}
