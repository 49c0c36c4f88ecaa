// One sandbox on a layer holding a big file, with its writable layer on disk
// (upperOnDisk), that opens the file for writing and changes one byte.
// Run by reflink-upper.test.ts as a child, as root and as an unprivileged
// user, with SANDBOX_RUN_HOME on the filesystem under test. Prints JSON:
// what the reflink probe said, how much the filesystem's used space grew
// while the sandbox lived, whether the upper copy shares extents with the
// lower, and the file's content as the sandbox read it back.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../src/layers/index.js';
import { reflinkUppers } from '../../src/layers/reflink.js';
import { postgres } from '../../src/presets/postgres/index.js';
import { createSandbox } from '../../src/sandbox/create.js';
import { Sandbox } from '../../src/sandbox/sandbox.js';

const FILE_BYTES = 64 * 2 ** 20;
const CHANGED_AT = 5 * 2 ** 20 + 7;

/** 64 MiB whose every 4 KiB block says its own number: a misplaced block reads back wrong. */
function bigFile(): Buffer {
  const data = Buffer.alloc(FILE_BYTES);
  for (let block = 0; block < FILE_BYTES / 4096; block++) data.fill(`block ${block}\n`, block * 4096, (block + 1) * 4096);
  return data;
}

const used = (dir: string) => {
  execFileSync('sync', ['-f', dir]);
  const st = statfsSync(dir);
  return (st.blocks - st.bfree) * st.bsize;
};

/** Extents of `file` that FIEMAP flags shared (filefrag -v prints 'shared'). */
function sharedExtents(file: string): number {
  const filefrag = ['/usr/sbin/filefrag', '/sbin/filefrag'].find((path) => existsSync(path));
  if (!filefrag) return -1;
  return execFileSync(filefrag, ['-v', file], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => /\bshared\b/.test(line)).length;
}

// Inside: open for writing (overlayfs copies up here), change one byte, read the whole file back.
const INSIDE = `
  const fs = require('node:fs');
  const fd = fs.openSync('/mnt/big', 'r+');
  fs.writeSync(fd, 'X', ${CHANGED_AT});
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  console.log(require('node:crypto').createHash('sha256').update(fs.readFileSync('/mnt/big')).digest('hex'));
`;

async function main(): Promise<void> {
  const home = process.env.SANDBOX_RUN_HOME!;
  const source = join(home, 'source');
  mkdirSync(source);
  const data = bigFile();
  writeFileSync(join(source, 'big'), data);
  // What the sandbox must read back, computed here from the bytes themselves.
  data.write('X', CHANGED_AT);
  const store = await openStore();
  const layer = await store.snapshot(source, { name: 'big' });
  const lowers = await store.lowerDirs(layer.digest);
  const reflinks = await reflinkUppers(store.dir);
  const before = used(home);
  const report: Record<string, unknown> = { reflinks: reflinks ?? null, fileBytes: FILE_BYTES, expected: createHash('sha256').update(data).digest('hex') };
  {
    await using sb = await Sandbox.create({ workdir: 'none', overlays: [{ lower: lowers, target: '/mnt', upperOnDisk: true }] });
    const result = await sb.exec(process.execPath, ['-e', INSIDE]);
    report.readBack = result.stdout.trim();
    report.stderr = result.stderr;
    report.growth = used(home) - before;
    const uppers = join(home, 'uppers');
    const copies = readdirSync(uppers).map((scoped) => join(uppers, scoped, '0', 'upper', 'big'));
    report.upperCopies = copies.filter((file) => existsSync(file)).length;
    report.sharedExtents = copies.length === 1 ? sharedExtents(copies[0]!) : -1;
  }
  report.leftUppers = readdirSync(join(home, 'uppers'));
  console.log(JSON.stringify(report));
}

/**
 * The PostgreSQL preset on the same home: its data overlay gets a disk upper
 * when the store clones, so the table files a SELECT and a 10-row UPDATE
 * copy up are clones. Reports the growth and the relation file's extents.
 */
async function postgresMain(): Promise<void> {
  const home = process.env.SANDBOX_RUN_HOME!;
  const table = 'CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 200000) g; CHECKPOINT';
  const pg = postgres({ seed: { command: `psql -X -q -c "${table}"` } });
  await pg.prepare();
  const before = used(home);
  await using sb = await createSandbox({ workdir: 'none', presets: [pg] });
  const psql = async (sql: string) => (await sb.exec('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql])).stdout.trim();
  const file = await psql("SELECT pg_relation_filepath('t')");
  const count = await psql('SELECT count(*) FROM t');
  const uppers = join(home, 'uppers');
  const upperFiles = () => readdirSync(uppers).map((scoped) => join(uppers, scoped, '0', 'upper', 'data', file));
  // With pg-lazy-write.so preloaded too, a read clones nothing: the sandbox reads the store's file (and its page cache).
  const copiedByRead = upperFiles().some((path) => existsSync(path));
  await psql("UPDATE t SET pad = 'changed' WHERE id <= 10; CHECKPOINT");
  const changed = await psql("SELECT count(*) FROM t WHERE pad = 'changed'");
  const copies = upperFiles();
  const copy = copies.find((path) => existsSync(path));
  const report = {
    fileBytes: copy ? statSync(copy).size : 0,
    preloaded: pg.copyUp?.mechanism === 'reflink' && !!pg.copyUp.library,
    copiedByRead,
    count,
    changed,
    growth: used(home) - before,
    upperCopies: copies.filter((path) => existsSync(path)).length,
    sharedExtents: copy ? sharedExtents(copy) : -1,
  };
  await sb.dispose();
  console.log(JSON.stringify({ ...report, leftUppers: readdirSync(uppers) }));
}

await (process.argv[2] === 'postgres' ? postgresMain() : main());
