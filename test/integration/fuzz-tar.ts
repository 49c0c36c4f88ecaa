// Raw tar records for the import fuzzer: read an archive the real export
// wrote into editable records, write them back (pax for long names), and
// poke at header fields with the checksum fixed or not.
import { Header } from 'tar';

/** One archive entry, as editable data. */
export interface TarRecord {
  path: string;
  /** node-tar's type name ('File', 'SymbolicLink', 'CharacterDevice', ...). */
  type: string;
  mode: number;
  mtime: Date;
  linkpath?: string;
  data: Buffer;
}

export const BLOCK = 512;

/** Byte ranges of the ustar header fields. */
export const FIELDS = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  type: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/** Parses pax `len key=value\n` records (only what the export writes: path, linkpath). */
function paxFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of text.matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) fields[match[1]!] = match[2]!;
  return fields;
}

/** The records of a well-formed, uncompressed archive (as written by the export). */
export function readRecords(tar: Buffer): TarRecord[] {
  const records: TarRecord[] = [];
  let pax: Record<string, string> = {};
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    const header = new Header(block);
    const size = header.size ?? 0;
    const data = Buffer.from(tar.subarray(offset + BLOCK, offset + BLOCK + size));
    offset += BLOCK + padded(size);
    if (header.type === 'ExtendedHeader') {
      pax = paxFields(data.toString('utf8'));
      continue;
    }
    const linkpath = pax.linkpath ?? header.linkpath;
    records.push({
      path: pax.path ?? header.path!,
      type: header.type!,
      mode: header.mode ?? 0,
      mtime: header.mtime ?? new Date(0),
      data,
      ...(linkpath ? { linkpath } : {}),
    });
    pax = {};
  }
  return records;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

/** One record as blocks: a pax header when a name does not fit, the header, the padded data. */
export function recordBlocks(record: TarRecord): Buffer {
  const size = record.data.length;
  const fields = {
    path: record.path,
    type: record.type as 'File',
    mode: record.mode,
    uid: 0,
    gid: 0,
    size,
    mtime: record.mtime,
    ...(record.linkpath ? { linkpath: record.linkpath } : {}),
  };
  const header = new Header(fields);
  header.encode();
  const parts: Buffer[] = [];
  if (header.needPax) {
    const body = Buffer.from(paxRecord('path', record.path) + (record.linkpath ? paxRecord('linkpath', record.linkpath) : ''));
    const pax = new Header({ path: 'PaxHeader/entry', type: 'ExtendedHeader', mode: 0o644, size: body.length, mtime: record.mtime });
    pax.encode();
    parts.push(pax.block!, body, Buffer.alloc(padded(body.length) - body.length));
  }
  parts.push(header.block!, record.data, Buffer.alloc(padded(size) - size));
  return Buffer.concat(parts);
}

/** A whole archive, with the two zero blocks at the end. */
export function writeRecords(records: readonly TarRecord[]): Buffer {
  return Buffer.concat([...records.map(recordBlocks), Buffer.alloc(2 * BLOCK)]);
}

/** Offsets of every header block (pax headers included), walking sizes as the parser would. */
export function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    offsets.push(offset);
    const size = parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) break;
    offset += BLOCK + padded(size);
  }
  return offsets;
}

/** Rewrites the checksum of the header block at `offset` so the parser accepts its other fields. */
export function fixChecksum(tar: Buffer, offset: number): void {
  const block = tar.subarray(offset, offset + BLOCK);
  if (block.length < BLOCK) return;
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}
