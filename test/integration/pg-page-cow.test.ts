// pg-page-cow.so (copyUp 'pages': page-level copy-on-write for relation files) with real PostgreSQL on real overlayfs,
// data checksums on: the same write workload as pg-lazy-write.test.ts (writes, extends, truncates, TRUNCATE, DELETE,
// VACUUM, VACUUM FULL, CLUSTER, REINDEX, CREATE INDEX, DROP TABLE, CREATE DATABASE ... TEMPLATE both strategies,
// CHECKPOINT) gives the same results as a plain overlay and passes pg_amcheck --heapallindexed and pg_checksums --check
// (run through the library: it reads the files itself); no seeded relation file is ever copied up; concurrent pgbench
// clients keep balances equal to the history; a restarted server sees its own writes; a 10-row update costs pages.
//
// The writable layers are host directories (the overlays' `upper`), so what was copied up is read from the host.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox, findPostgresBindir, type Preset, postgres, type Sandbox, Service } from '../../src/index.js';
import { DATA_DIR } from '../../src/presets/postgres/cluster.js';
import { LAZY_DIR_ENV, PAGES_DIR_ENV, PAGES_LIBRARY_ENV, pagesDir } from '../../src/presets/postgres/copy-up.js';
import { DIGESTS, hostLayer, layerContents, PGBENCH_BALANCES, psql, READS, SEED, withHostUpper, writeWorkload } from './pg-workload.js';
import { buildFixture, ROOT, tempDir, useTempHome } from './support.js';

useTempHome();

const LIBRARIES = {
  plain: join(ROOT, 'helper/build/pg-page-cow.so'),
  sanitized: join(ROOT, 'helper/build/pg-page-cow-sanitized.so'),
} as const;
const LAZY_LIBRARY = join(ROOT, 'helper/build/pg-lazy-write.so');

describe("PostgreSQL with copyUp 'pages' (data checksums on)", () => {
  const seedDir = tempDir();
  writeFileSync(join(seedDir.path, 'seed.sql'), SEED);
  const seed = { sql: ['seed.sql'], command: 'pgbench -i -q -s 2' };
  const options = { checksums: true, settings: { autovacuum: 'off' }, seed, baseDir: seedDir.path } as const;
  const pages = postgres({ ...options, copyUp: 'pages' });
  const plain = postgres({ ...options, copyUp: 'overlay' });
  const lazy = postgres({ ...options, copyUp: 'lazy-open' });
  const sanitized = postgres({ ...options, copyUp: 'pages' });
  async function prepareSanitized(): Promise<void> {
    process.env[PAGES_LIBRARY_ENV] = LIBRARIES.sanitized;
    try {
      await sanitized.prepare();
    } finally {
      delete process.env[PAGES_LIBRARY_ENV];
    }
  }

  async function stopServer(sb: Sandbox): Promise<void> {
    for (const service of sb.services) await service.stop();
  }

  /** pg_checksums reads relation files itself: through the library (any build), as the server does. */
  async function checksums(sb: Sandbox, library = LIBRARIES.plain) {
    const env = { LD_PRELOAD: `${library} ${LAZY_LIBRARY}`, [LAZY_DIR_ENV]: DATA_DIR, [PAGES_DIR_ENV]: pagesDir(DATA_DIR) };
    return sb.exec(join(findPostgresBindir(), 'pg_checksums'), ['--check', '-D', DATA_DIR], { all: true, env });
  }

  /** Runs `body` in a sandbox whose data layer is on the host; returns its value and what the layer holds afterwards. */
  async function inSandbox<T>(preset: Preset, body: (sb: Sandbox) => Promise<T>) {
    const dir = tempDir();
    try {
      const sb = await createSandbox({ workdir: 'none', presets: [withHostUpper(preset, dir.path)] });
      let value: T;
      try {
        value = await body(sb);
      } finally {
        await sb.dispose();
      }
      // A seeded relation file in the writable layer is one overlayfs copied up: 'pages' must never cause one.
      return { value, ...layerContents(join(dir.path, 'upper'), join(pages.cluster, 'data')) };
    } finally {
      dir.remove();
    }
  }

  it('the preset chose pages with both libraries; the cluster has data checksums', async () => {
    await pages.prepare();
    expect(pages.copyUp).toMatchObject({ mechanism: 'pages', pagesLibrary: LIBRARIES.plain, library: LAZY_LIBRARY });
    const control = execFileSync(join(findPostgresBindir(), 'pg_controldata'), [join(pages.cluster, 'data')], { encoding: 'utf8' });
    expect(control).toMatch(/Data page checksum version:\s+1/);
  }, 180_000);

  it('a sandbox that only reads writes nothing: no relation file copied up, no delta', async () => {
    await Promise.all([pages.prepare(), plain.prepare()]);
    const reads = async (sb: Sandbox) => {
      const out = await psql(sb, 'app', READS);
      await stopServer(sb);
      return out;
    };
    const withLibrary = await inSandbox(pages, reads);
    const without = await inSandbox(plain, reads);
    expect(withLibrary.value).toBe(without.value);
    expect(withLibrary.value).toMatch(/^100000\|/);
    expect(withLibrary.copiedUp).toEqual([]);
    expect(withLibrary.deltas.files).toEqual([]);
    expect(without.copiedUp.length).toBeGreaterThan(5);
  }, 180_000);

  it('writes through every path exactly: same results as a plain overlay, pg_amcheck --heapallindexed and pg_checksums pass', async () => {
    await Promise.all([pages.prepare(), plain.prepare()]);
    const workload = async (sb: Sandbox) => {
      const out = await writeWorkload(sb);
      const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['--all', '--heapallindexed', '--install-missing'], { all: true });
      await stopServer(sb);
      return { out, amcheck, checksums: await checksums(sb) };
    };
    const withLibrary = await inSandbox(pages, workload);
    const without = await inSandbox(plain, workload);
    expect(withLibrary.value.amcheck.all).toBe('');
    expect(withLibrary.value.amcheck.exitCode).toBe(0);
    expect(withLibrary.value.checksums.all).toMatch(/Bad checksums:\s+0\b/);
    expect(withLibrary.value.checksums.exitCode).toBe(0);
    expect(withLibrary.value.out).toBe(without.value.out);
    expect(without.value.amcheck.exitCode).toBe(0);
    expect(withLibrary.copiedUp).toEqual([]);
    // The seeded files were written through deltas (the library did the work, nothing skipped it).
    expect(withLibrary.deltas.files.filter((file) => file.endsWith('.map')).length).toBeGreaterThan(5);
  }, 300_000);

  it('a restarted server in the same sandbox sees its own writes (deltas and maps outlive the processes)', async () => {
    await pages.prepare();
    const { value, copiedUp } = await inSandbox(pages, async (sb) => {
      await psql(sb, 'app', `UPDATE acc SET note = 'restarted' WHERE id % 1000 = 1; DELETE FROM small WHERE k > 10; VACUUM small`);
      const before = await psql(sb, 'app', DIGESTS);
      const spec = sb.services[0]!.spec;
      await stopServer(sb);
      sb.addService(await Service.start(sb, { ...spec, name: 'postgres-again' }));
      const after = await psql(sb, 'app', DIGESTS);
      const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['-d', 'app', '--heapallindexed', '--install-missing'], { all: true });
      await stopServer(sb);
      return { before, after, amcheck, checksums: await checksums(sb) };
    });
    expect(value.after).toBe(value.before);
    expect(value.after).toContain('|8192|'); // small truncated by VACUUM to one block, and so it stays
    expect(value.amcheck.exitCode, value.amcheck.all).toBe(0);
    expect(value.checksums.all).toMatch(/Bad checksums:\s+0\b/);
    expect(copiedUp).toEqual([]);
  }, 300_000);

  it.each([
    ['plain', pages],
    ['sanitized', sanitized],
  ] as const)(
    'keeps concurrent backends exact (pgbench -c 4, %s build): balances agree, pg_amcheck and pg_checksums pass',
    async (build, preset) => {
      await (build === 'sanitized' ? prepareSanitized() : preset.prepare());
      expect(preset.copyUp).toMatchObject({ mechanism: 'pages', pagesLibrary: LIBRARIES[build] });
      const { value, copiedUp } = await inSandbox(preset, async (sb) => {
        const pgbench = ['-n', '-c', '4', '-j', '2', '-t', '150', 'app'];
        const runs = [await sb.exec('pgbench', pgbench, { all: true })];
        await psql(sb, 'app', 'CHECKPOINT');
        runs.push(await sb.exec('pgbench', pgbench, { all: true }));
        const balances = await psql(sb, 'app', PGBENCH_BALANCES);
        const amcheck = await sb.exec(join(findPostgresBindir(), 'pg_amcheck'), ['-d', 'app', '--heapallindexed', '--install-missing'], { all: true });
        await stopServer(sb);
        return { runs, balances, amcheck, checksums: await checksums(sb, LIBRARIES[build]), log: sb.services[0]?.log() ?? '' };
      });
      for (const run of value.runs) expect(run.exitCode, run.all).toBe(0);
      expect(value.balances).toBe('t|1200');
      expect(value.amcheck.exitCode, value.amcheck.all).toBe(0);
      expect(value.checksums.all).toMatch(/Bad checksums:\s+0\b/);
      expect(value.checksums.all).not.toMatch(/runtime error/);
      expect(value.log).not.toMatch(/runtime error|Bad file descriptor/);
      expect(copiedUp).toEqual([]);
    },
    300_000,
  );

  it('a 10-row update + CHECKPOINT costs the pages written, where lazy-open copies pgbench_accounts whole', async () => {
    await Promise.all([pages.prepare(), lazy.prepare()]);
    const update = async (sb: Sandbox) => psql(sb, 'app', 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 10; CHECKPOINT');
    const withPages = await inSandbox(pages, update);
    const withLazy = await inSandbox(lazy, update);
    const accounts = statSync(join(pages.cluster, 'data', withLazy.copiedUp.find((file) => /^base\/\d+\/\d+$/.test(file)) ?? 'missing')).size;
    console.log(`10-row update: pages ${withPages.deltas.bytes} B in deltas + maps, lazy-open ${withLazy.relations.bytes} B of copied-up files`);
    expect(withPages.copiedUp).toEqual([]);
    expect(withLazy.relations.bytes).toBeGreaterThan(accounts); // the accounts table (26 MB at -s 2), whole
    expect(withPages.deltas.bytes).toBeLessThan(accounts / 20);
  }, 300_000);
});

describe.each(Object.entries(LIBRARIES))('pg-page-cow (%s build) on overlayfs, driven by a C probe', (_build, library) => {
  const probe = buildFixture('page-cow-probe');

  it('merges blocks, sizes, truncates, extends and unlinks exactly, and never copies the lower file up', async () => {
    const dir = tempDir();
    try {
      const lower = join(dir.path, 'lower');
      mkdirSync(join(lower, 'data/base/1'), { recursive: true });
      writeFileSync(join(lower, 'data/base/1/123'), Buffer.alloc(3 * 8192, 1));
      const layer = hostLayer(join(dir.path, 'layer'), lower);
      await using sb = await createSandbox({ workdir: 'none', overlays: [{ lower: [lower], target: '/tmp/probe', upper: layer }] });
      const env = { LD_PRELOAD: `${library} ${LAZY_LIBRARY}`, [LAZY_DIR_ENV]: '/tmp/probe/data', [PAGES_DIR_ENV]: '/tmp/probe/pages' };
      const result = await sb.exec(probe, ['/tmp/probe'], { env, all: true });
      expect(result.all).toMatch(/PASSED\s*$/);
      expect(result.exitCode).toBe(0);
      expect(existsSync(join(layer.upper, 'data/base/1/123'))).toBe(false); // never copied up
      expect(readdirSync(join(layer.upper, 'pages/base/1')).sort()).toEqual(['123', '123.map']); // 124's went with it
    } finally {
      dir.remove();
    }
  });
});

/*
 * PostgreSQL's own regression suite (see pg-lazy-write.test.ts and README "What reads and writes cost"): with
 * SANDBOX_RUN_PG_REGRESS_DIR set, it runs against a 'pages' sandbox and a plain-overlay one; both must fail the same
 * tests with the same diffs.
 */
const REGRESS_DIR = process.env.SANDBOX_RUN_PG_REGRESS_DIR;
describe.skipIf(!REGRESS_DIR)("PostgreSQL regression suite, copyUp 'pages' against a plain overlay (SANDBOX_RUN_PG_REGRESS_DIR)", () => {
  const settings = ["lc_messages TO 'C'", "lc_monetary TO 'C'", "lc_numeric TO 'C'", "lc_time TO 'C'", "bytea_output TO 'hex'"].concat([
    "timezone_abbreviations TO 'Default'",
  ]);

  async function regress(copyUp: 'pages' | 'overlay'): Promise<{ summary: string; failed: string[]; diffs: string }> {
    const dir = REGRESS_DIR!;
    const preset = postgres({ copyUp, checksums: true });
    await preset.prepare();
    await using sb = await createSandbox({ workdir: 'none', presets: [preset] });
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
    const pages = await regress('pages');
    const plain = await regress('overlay');
    console.log(`pg_regress: pages ${pages.summary}, overlay ${plain.summary}; failed: ${pages.failed.join(' ') || 'none'}`);
    expect(pages.failed).toEqual(plain.failed);
    expect(pages.diffs).toBe(plain.diffs);
    expect(pages.failed.length).toBeLessThan(20);
  }, 900_000);
});
