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
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox, findPostgresBindir, type Preset, postgres, type Sandbox } from '../../src/index.js';
import { DATA_DIR } from '../../src/presets/postgres/cluster.js';
import { LAZY_DIR_ENV, LAZY_LIBRARY_ENV } from '../../src/presets/postgres/copy-up.js';
import { hostLayer, PGBENCH_BALANCES, psql, READS, relationFiles, SEED, withHostUpper, writeWorkload } from './pg-workload.js';
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
      return { value, copied: relationFiles(join(dir.path, 'upper')).files };
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
      const out = await writeWorkload(sb);
      const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['--all', '--heapallindexed', '--install-missing'], { all: true });
      await stopServer(sb);
      const checksums = await sb.exec(join(findPostgresBindir(), 'pg_checksums'), ['--check', '-D', DATA_DIR], { all: true });
      return { out, amcheck, checksums };
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
        const balances = await psql(sb, 'app', PGBENCH_BALANCES);
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
