// pg-lazy-write.so ("open read-only until the first write") on real overlayfs:
// every call it upgrades, driven by a C probe (plain and UBSan builds), and
// inert outside its directory; then real PostgreSQL with data checksums: a
// sandbox that only reads copies no relation file up (a plain overlay copies
// them), and a workload through every write path (writes, extends,
// truncates, TRUNCATE, DELETE, VACUUM, VACUUM FULL, CLUSTER, REINDEX, CREATE
// INDEX, DROP TABLE, CREATE DATABASE ... TEMPLATE both strategies,
// CHECKPOINT) gives the same results as a plain overlay and passes
// pg_amcheck --heapallindexed and pg_checksums --check.
//
// The writable layers are host directories (the overlays' `upper`), so what
// was copied up is read from the host, not inferred.

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox, findPostgresBindir, type Preset, type PresetParts, postgres, type Sandbox } from '../../src/index.js';
import { DATA_DIR } from '../../src/presets/postgres/cluster.js';
import { LAZY_DIR_ENV, LAZY_LIBRARY_ENV } from '../../src/presets/postgres/copy-up.js';
import { buildFixture, ROOT, tempDir, useTempHome } from './support.js';

useTempHome();

const LIBRARIES = {
  plain: join(ROOT, 'helper/build/pg-lazy-write.so'),
  sanitized: join(ROOT, 'helper/build/pg-lazy-write-sanitized.so'),
} as const;
const PROBE_FILES = ['read', 'write', 'dup', 'dup2', 'pwritev', 'writev', 'pwritev2', 'ftruncate', 'fallocate', 'posix_fallocate'].concat([
  'copy_file_range',
  'sendfile',
  'mmap',
  'lock',
  'lockf',
  'fdopen',
  'append',
]);
/** Relation segment files: <relfilenode>[_fsm|_vm|_init][.<segment>]. */
const RELATION_FILE = /^\d+(_fsm|_vm|_init)?(\.\d+)?$/;

/** A writable layer on the host: upper and work dirs, the upper root with the lower root's mode (PostgreSQL insists on 0700). */
function hostLayer(dir: string, lowerRoot: string): { upper: string; work: string } {
  const layer = { upper: join(dir, 'upper'), work: join(dir, 'work') };
  for (const path of Object.values(layer)) mkdirSync(path, { recursive: true });
  chmodSync(layer.upper, statSync(lowerRoot).mode & 0o7777);
  return layer;
}

/** The preset with its data overlay's writable layer in `dir` on the host. */
function withHostUpper(preset: Preset, dir: string): Preset {
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

/** Relation files in a writable layer's copy of the data directory (relative paths). */
function relationFiles(upper: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, rel: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name), `${rel}${entry.name}/`);
      else if (entry.isFile() && RELATION_FILE.test(entry.name)) found.push(`${rel}${entry.name}`);
    }
  };
  walk(join(upper, 'data/base'), 'base/');
  walk(join(upper, 'data/global'), 'global/');
  return found.sort();
}

describe.each(Object.entries(LIBRARIES))('pg-lazy-write (%s build) on overlayfs', (_build, library) => {
  const probe = buildFixture('lazy-write-probe');

  /** Runs the probe on a fresh overlay of PROBE_FILES at /tmp/probe; returns its output and the writable layer's files. */
  async function runProbe(expect: 'lazy' | 'plain', env: Record<string, string>): Promise<{ output: string; exitCode: number; upper: string[] }> {
    const dir = tempDir();
    try {
      const lower = join(dir.path, 'lower');
      mkdirSync(lower);
      for (const name of PROBE_FILES) writeFileSync(join(lower, name), 'original');
      const layer = hostLayer(join(dir.path, 'layer'), lower);
      await using sb = await createSandbox({ workdir: 'none', overlays: [{ lower: [lower], target: '/tmp/probe', upper: layer }] });
      const result = await sb.exec(probe, ['/tmp/probe', expect], { env });
      return { output: `${result.stdout}${result.stderr}`, exitCode: result.exitCode ?? -1, upper: readdirSync(layer.upper).sort() };
    } finally {
      dir.remove();
    }
  }

  it('upgrades every writing call onto the same descriptor, and a file that is only read is never copied up', async () => {
    const { output, exitCode, upper } = await runProbe('lazy', { LD_PRELOAD: library, [LAZY_DIR_ENV]: '/tmp/probe' });
    expect(output).toMatch(/PASSED$/);
    expect(exitCode).toBe(0);
    expect(upper).not.toContain('read');
    // Each written file was copied up; the appended one was opened O_APPEND (passed through, copied up at open).
    expect(upper).toEqual(PROBE_FILES.filter((name) => name !== 'read').sort());
  });

  it('is inert outside its directory: O_RDWR opens there copy up at once, as without it', async () => {
    const { output, exitCode, upper } = await runProbe('plain', { LD_PRELOAD: library, [LAZY_DIR_ENV]: '/tmp/probe-elsewhere' });
    expect(output).toMatch(/PASSED$/);
    expect(exitCode).toBe(0);
    expect(upper).toContain('read');
    const unset = await runProbe('plain', { LD_PRELOAD: library });
    expect(unset.output).toMatch(/PASSED$/);
    expect(unset.upper).toContain('read');
  });
});

const SEED = `
CREATE TABLE acc (id int PRIMARY KEY, balance int NOT NULL, note text NOT NULL);
INSERT INTO acc SELECT g, g % 1000, repeat(chr(97 + g % 26), 20 + g % 80) FROM generate_series(1, 100000) g;
CREATE INDEX acc_balance ON acc (balance);
CREATE TABLE wide (id int PRIMARY KEY, payload text NOT NULL);
INSERT INTO wide SELECT g, repeat(md5(g::text), 300) FROM generate_series(1, 400) g;
CREATE TABLE small (k int, v text);
INSERT INTO small SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
`;

const READS = `
SELECT count(*), sum(balance), sum(length(note)) FROM acc;
SELECT count(*) FROM acc WHERE balance = 7;
SELECT id, note FROM acc WHERE id IN (1, 5000, 99999) ORDER BY id;
SELECT count(*), sum(length(payload)) FROM wide;
SELECT sum(k), count(v) FROM small;
`;

const DIGESTS = `
SELECT md5(string_agg(id || ':' || balance || ':' || note, ',' ORDER BY id)) FROM acc;
SELECT md5(string_agg(id || ':' || payload, ',' ORDER BY id)) FROM wide;
SELECT md5(string_agg(k || ':' || v, ',' ORDER BY k)) FROM small;
SELECT count(*) FROM acc WHERE balance = 8;
`;

const WRITES = `
UPDATE acc SET balance = balance + 1 WHERE id <= 10;
SELECT sum(balance) FROM acc;
INSERT INTO acc SELECT g, g % 7, repeat('n', g % 50) FROM generate_series(100001, 160000) g;
SELECT count(*), pg_relation_size('acc') > 0 FROM acc;
DELETE FROM acc WHERE id > 120000;
VACUUM acc;
SELECT count(*) FROM acc;
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

const TEMPLATES = `
CREATE DATABASE copy_wal TEMPLATE app STRATEGY WAL_LOG;
CREATE DATABASE copy_file TEMPLATE app STRATEGY FILE_COPY;
`;

describe('PostgreSQL with copyUp lazy-open (data checksums on)', () => {
  const seedDir = tempDir();
  writeFileSync(join(seedDir.path, 'seed.sql'), SEED);
  // The preset's build analyzes and vacuums the seed (hint bits set, no dead row for a read to prune: such a read is a
  // real write of PostgreSQL's own). Autovacuum off: a worker starting during a test would write too.
  const seed = { sql: ['seed.sql'], command: 'pgbench -i -q -s 2' };
  const options = { checksums: true, settings: { autovacuum: 'off' }, seed, baseDir: seedDir.path } as const;
  const lazy = postgres({ ...options, copyUp: 'lazy-open' });
  const plain = postgres({ ...options, copyUp: 'overlay' });
  /** The same with the UBSan build, which the preset takes from $SANDBOX_RUN_PG_LAZY_LIBRARY when it prepares. */
  const sanitized = postgres({ ...options, copyUp: 'lazy-open' });
  async function prepareSanitized(): Promise<void> {
    process.env[LAZY_LIBRARY_ENV] = LIBRARIES.sanitized;
    try {
      await sanitized.prepare();
    } finally {
      delete process.env[LAZY_LIBRARY_ENV];
    }
  }

  async function psql(sb: Sandbox, database: string, sql: string): Promise<string> {
    const result = await sb.exec('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-d', database, '-f', '-'], { input: sql, all: true });
    if (result.exitCode !== 0) throw new Error(`psql -d ${database} failed (exit ${result.exitCode}):\n${result.all}`);
    return result.stdout ?? '';
  }

  async function stopServer(sb: Sandbox): Promise<void> {
    await sb.services.find((service) => service.spec.name === 'postgres')!.stop();
  }

  /** Starts a sandbox with its data's writable layer on the host; `body` runs in it; returns what body returns and the relation files copied up. */
  async function inSandbox<T>(preset: Preset, body: (sb: Sandbox) => Promise<T>): Promise<{ value: T; copied: string[] }> {
    const dir = tempDir();
    try {
      const sb = await createSandbox({ workdir: 'none', presets: [withHostUpper(preset, dir.path)] });
      let value: T;
      try {
        value = await body(sb);
      } finally {
        await sb.dispose();
      }
      return { value, copied: relationFiles(join(dir.path, 'upper')) };
    } finally {
      dir.remove();
    }
  }

  it('the preset chose lazy-open with the library, and the cluster has data checksums', async () => {
    await Promise.all([lazy.prepare(), plain.prepare()]);
    expect(lazy.copyUp).toMatchObject({ mechanism: 'lazy-open', library: LIBRARIES.plain });
    expect(plain.copyUp?.mechanism).toBe('overlay');
    expect(lazy.cluster).toBe(plain.cluster); // copyUp is no part of the seed
    const control = execFileSync(join(findPostgresBindir(), 'pg_controldata'), [join(lazy.cluster, 'data')], { encoding: 'utf8' });
    expect(control).toMatch(/Data page checksum version:\s+1/);
  }, 180_000);

  it('a sandbox that only reads copies no relation file up; a plain overlay copies every one it read', async () => {
    await Promise.all([lazy.prepare(), plain.prepare()]);
    const reads = async (sb: Sandbox) => {
      const out = await psql(sb, 'app', READS);
      await stopServer(sb); // its shutdown checkpoint would write any page the reads dirtied
      return out;
    };
    const withLibrary = await inSandbox(lazy, reads);
    const without = await inSandbox(plain, reads);
    expect(withLibrary.value).toBe(without.value);
    expect(withLibrary.value).toMatch(/^100000\|/);
    expect(withLibrary.copied).toEqual([]);
    expect(without.copied.length).toBeGreaterThan(5); // acc, its indexes, wide and its TOAST, small, the catalogs read
  }, 180_000);

  it('writes through every path exactly: same results as a plain overlay, pg_amcheck --heapallindexed and pg_checksums pass', async () => {
    await Promise.all([lazy.prepare(), plain.prepare()]);
    const workload = async (sb: Sandbox) => {
      const out = [await psql(sb, 'app', WRITES), await psql(sb, 'postgres', TEMPLATES)];
      for (const copy of ['copy_wal', 'copy_file']) out.push(await psql(sb, copy, `${DIGESTS}UPDATE acc SET balance = 0 WHERE id = 1; ${DIGESTS}`));
      out.push(await psql(sb, 'app', DIGESTS));
      const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['--all', '--heapallindexed', '--install-missing'], { all: true });
      await stopServer(sb);
      const checksums = await sb.exec(join(findPostgresBindir(), 'pg_checksums'), ['--check', '-D', DATA_DIR], { all: true });
      return { out: out.join('\n--\n'), amcheck, checksums };
    };
    const withLibrary = await inSandbox(lazy, workload);
    const without = await inSandbox(plain, workload);
    expect(withLibrary.value.amcheck.all).toBe('');
    expect(withLibrary.value.amcheck.exitCode).toBe(0);
    expect(withLibrary.value.checksums.all).toMatch(/Bad checksums:\s+0\b/);
    expect(withLibrary.value.checksums.exitCode).toBe(0);
    expect(withLibrary.value.out).toBe(without.value.out);
    expect(without.value.amcheck.exitCode).toBe(0);
    // The writes did copy the written relations up (the library upgraded, not skipped, them).
    expect(withLibrary.copied.length).toBeGreaterThan(0);
  }, 300_000);

  it.each([
    ['plain', lazy],
    ['sanitized', sanitized],
  ] as const)(
    'keeps concurrent backends exact (pgbench -c 4, %s build): balances agree, pg_amcheck and pg_checksums pass',
    async (build, preset) => {
      await (build === 'sanitized' ? prepareSanitized() : preset.prepare());
      expect(preset.copyUp).toMatchObject({ mechanism: 'lazy-open', library: LIBRARIES[build] });
      // Four backends update the same accounts, tellers and branches, each opening the lower files read-only and
      // upgrading at its own first write, while the others already write the copied-up file; a checkpoint in between.
      const { value } = await inSandbox(preset, async (sb) => {
        const pgbench = ['-n', '-c', '4', '-j', '2', '-t', '150', 'app'];
        const runs = [await sb.exec('pgbench', pgbench, { all: true })];
        await psql(sb, 'app', 'CHECKPOINT');
        runs.push(await sb.exec('pgbench', pgbench, { all: true }));
        const balances = await psql(
          sb,
          'app',
          `SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)
            AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history)
            AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history),
           (SELECT count(*) FROM pgbench_history)`,
        );
        const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['-d', 'app', '--heapallindexed', '--install-missing'], { all: true });
        await stopServer(sb);
        const checksums = await sb.exec(join(findPostgresBindir(), 'pg_checksums'), ['--check', '-D', DATA_DIR], { all: true });
        return { runs, balances, amcheck, checksums, log: sb.services[0]?.log() ?? '' };
      });
      for (const run of value.runs) expect(run.exitCode, run.all).toBe(0);
      expect(value.balances).toBe('t|1200');
      expect(value.amcheck.exitCode, value.amcheck.all).toBe(0);
      expect(value.checksums.all).toMatch(/Bad checksums:\s+0\b/);
      // UBSan reports go to the server's stderr, its log.
      expect(value.log).not.toMatch(/runtime error|Bad file descriptor/);
    },
    300_000,
  );
});

/*
 * PostgreSQL's own regression suite (pg_regress, postgresql-server-dev-N), when
 * its SQL is at hand: SANDBOX_RUN_PG_REGRESS_DIR is the source's
 * src/test/regress (sql/, expected/, parallel_schedule) with regress.so built
 * in it (README: "What reads and writes cost"). The suite runs against a
 * lazy-open sandbox and a plain-overlay one; both must fail the same tests
 * with the same diffs (a newer minor server than the SQL fails a few).
 */
const REGRESS_DIR = process.env.SANDBOX_RUN_PG_REGRESS_DIR;
describe.skipIf(!REGRESS_DIR)('PostgreSQL regression suite, lazy-open against a plain overlay (SANDBOX_RUN_PG_REGRESS_DIR)', () => {
  const settings = [
    "lc_messages TO 'C'",
    "lc_monetary TO 'C'",
    "lc_numeric TO 'C'",
    "lc_time TO 'C'",
    "bytea_output TO 'hex'",
    "timezone_abbreviations TO 'Default'",
  ];

  /** pg_regress --use-existing in a sandbox: its summary and its diffs without paths and times. */
  async function regress(copyUp: 'lazy-open' | 'overlay'): Promise<{ summary: string; failed: string[]; diffs: string }> {
    const dir = REGRESS_DIR!;
    const preset = postgres({ copyUp, checksums: true });
    await preset.prepare();
    await using sb = await createSandbox({ workdir: 'none', presets: [preset] });
    // What pg_regress does itself without --use-existing.
    const setup = ['CREATE DATABASE regression TEMPLATE template0', ...settings.map((setting) => `ALTER DATABASE regression SET ${setting}`)];
    await sb.exec('psql', ['-X', '-d', 'postgres', ...setup.flatMap((sql) => ['-c', sql])]);
    const pgRegress = join(findPostgresBindir(), '../lib/pgxs/src/test/regress/pg_regress');
    const args = ['--use-existing', `--bindir=${findPostgresBindir()}`, `--inputdir=${dir}`, '--outputdir=/tmp/regress', `--dlpath=${dir}`];
    const run = await sb.exec(pgRegress, [...args, `--schedule=${join(dir, 'parallel_schedule')}`], { all: true, env: { PGDATABASE: 'postgres' } });
    const out = run.all ?? '';
    const diffs = (await sb.exec('sh', ['-c', 'cat /tmp/regress/regression.diffs 2>/dev/null || true'])).stdout ?? '';
    return {
      summary: /\d+ of \d+ tests failed|All \d+ tests passed/.exec(out)?.[0] ?? out.slice(-500),
      failed: [...out.matchAll(/^\s*(?:test )?(\S+)\s+\.\.\. FAILED/gm)].map((match) => match[1]!),
      diffs: diffs.replace(/^(diff|---|\+\+\+) .*$/gm, '').replace(/\d+ ms/g, ''),
    };
  }

  it('fails the same tests with the same diffs as a plain overlay', async () => {
    const lazy = await regress('lazy-open');
    const plain = await regress('overlay');
    console.log(`pg_regress: lazy-open ${lazy.summary}, overlay ${plain.summary}; failed: ${lazy.failed.join(' ') || 'none'}`);
    expect(lazy.failed).toEqual(plain.failed);
    expect(lazy.diffs).toBe(plain.diffs);
    expect(lazy.failed.length).toBeLessThan(20);
  }, 600_000);
});
