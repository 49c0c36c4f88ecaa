// The copy-up libraries on every supported PostgreSQL major (15-18), data checksums on: for each major found in
// $SANDBOX_RUN_PG_VERSIONS_DIR/<major>/bin (node scripts/postgres-versions.mjs DIR fetches 16, 17 and 18) and the
// host's 15, one sandbox per copyUp ('overlay', 'pages', 'lazy-open') runs, with its data layer on the host:
//   1. READS, then the server stops: a read-only sandbox copied no seeded relation file up (pages: and made no delta);
//   2. a new server in the same sandbox runs the write workload of pg-workload.ts (WRITES, TEMPLATES both
//      strategies, writes in the copies): its output must equal the plain overlay's on the same major;
//   3. a new server again (shared buffers empty): pg_amcheck --all --heapallindexed reads every heap, TOAST and
//      B-tree relation from the files, verifying each page's checksum on the way in; pg_stat_database's
//      checksum_failures stays 0 and the log has no page verification failure (pg_checksums must match the server's
//      major, and only 15's ships: it runs too on 15);
//   4. pgbench -c 4 twice, a CHECKPOINT between: balances equal the history.
// On 18 the preloaded servers must run with io_method=sync (the preset's lazyOpenSettings): AIO workers and io_uring
// would write past what the libraries were checked on.
//
// Without SANDBOX_RUN_PG_VERSIONS_DIR the file skips; with SANDBOX_RUN_REQUIRE_PG_VERSIONS=1 (CI) a missing 16, 17 or
// 18 fails instead. The coverage claim (which libc file calls each major imports) is at the top of pg-workload.ts.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox, type Preset, postgres, type Sandbox, Service } from '../../src/index.js';
import { DATA_DIR } from '../../src/presets/postgres/cluster.js';
import { lazyOpenEnv } from '../../src/presets/postgres/copy-up.js';
import { layerContents, PGBENCH_BALANCES, psql, READS, SEED, withHostUpper, writeWorkload } from './pg-workload.js';
import { tempDir, useTempHome } from './support.js';

useTempHome();

const VERSIONS_DIR = process.env.SANDBOX_RUN_PG_VERSIONS_DIR;
const REQUIRE = process.env.SANDBOX_RUN_REQUIRE_PG_VERSIONS === '1';
const REQUIRED = [16, 17, 18];
const HOST_15 = '/usr/lib/postgresql/15/bin';

/** The majors to run: the host's 15 and every <major>/bin with a server below the versions dir. */
function versions(): { major: number; bindir: string }[] {
  const found: { major: number; bindir: string }[] = [];
  if (existsSync(join(HOST_15, 'postgres'))) found.push({ major: 15, bindir: HOST_15 });
  if (VERSIONS_DIR && existsSync(VERSIONS_DIR))
    for (const entry of readdirSync(VERSIONS_DIR).filter((name) => /^\d+$/.test(name)))
      if (existsSync(join(VERSIONS_DIR, entry, 'bin/postgres'))) found.push({ major: Number(entry), bindir: join(VERSIONS_DIR, entry, 'bin') });
  return found.sort((a, b) => a.major - b.major);
}
const VERSIONS = versions();
const MISSING = REQUIRED.filter((major) => !VERSIONS.some((version) => version.major === major));
const MECHANISMS = ['overlay', 'pages', 'lazy-open'] as const;
type Mechanism = (typeof MECHANISMS)[number];
/** The server log lines a page failing its checksum on read gives. */
const CHECKSUM_ERRORS = /page verification failed|invalid page in block|checksum mismatch/i;

describe.runIf(REQUIRE)('SANDBOX_RUN_REQUIRE_PG_VERSIONS=1: PostgreSQL 16, 17 and 18 are all there', () => {
  it(`finds each in $SANDBOX_RUN_PG_VERSIONS_DIR (${VERSIONS_DIR ?? 'unset'}): node scripts/postgres-versions.mjs DIR`, () => {
    expect(VERSIONS_DIR, 'SANDBOX_RUN_PG_VERSIONS_DIR is unset').toBeDefined();
    expect(MISSING, `missing majors below ${VERSIONS_DIR}`).toEqual([]);
  });
});

describe.skipIf(!VERSIONS_DIR)(
  'copyUp pages and lazy-open on PostgreSQL 15-18 (skipped: set SANDBOX_RUN_PG_VERSIONS_DIR, see scripts/postgres-versions.mjs)',
  () => {
    const seedDir = tempDir();
    writeFileSync(join(seedDir.path, 'seed.sql'), SEED);

    async function stopServers(sb: Sandbox): Promise<void> {
      for (const service of sb.services) await service.stop();
    }

    /** Stops the server and starts a new one in the same sandbox (same data layer, empty shared buffers). */
    async function restart(sb: Sandbox, name: string): Promise<void> {
      const spec = sb.services[0]!.spec;
      await stopServers(sb);
      sb.addService(await Service.start(sb, { ...spec, name }));
    }

    describe.each(VERSIONS)('PostgreSQL $major ($bindir)', ({ major, bindir }) => {
      const options = {
        bindir,
        checksums: true,
        settings: { autovacuum: 'off' },
        seed: { sql: ['seed.sql'], command: 'pgbench -i -q -s 1' },
        baseDir: seedDir.path,
      } as const;
      const presets: Record<Mechanism, ReturnType<typeof postgres>> = {
        overlay: postgres({ ...options, copyUp: 'overlay' }),
        pages: postgres({ ...options, copyUp: 'pages' }),
        'lazy-open': postgres({ ...options, copyUp: 'lazy-open' }),
      };
      /** The plain overlay's results, which the libraries' must equal. */
      const expected: { reads?: string; writes?: string } = {};

      /** Steps 1-4 of the header in one sandbox whose data layer is on the host. */
      async function scenario(mechanism: Mechanism) {
        const preset: Preset = presets[mechanism];
        const dir = tempDir();
        const upper = join(dir.path, 'upper');
        const lowerData = join(presets[mechanism].cluster, 'data');
        try {
          const sb = await createSandbox({ workdir: 'none', presets: [withHostUpper(preset, dir.path)] });
          try {
            const reads = await psql(sb, 'app', READS);
            await stopServers(sb); // its shutdown checkpoint would write any page the reads dirtied
            const afterReads = layerContents(upper, lowerData);
            await restart(sb, 'postgres-writes');
            const ioMethod = major >= 18 ? (await psql(sb, 'postgres', 'SHOW io_method')).trim() : undefined;
            const writes = await writeWorkload(sb);
            await restart(sb, 'postgres-cold');
            const amcheck = await sb.exec(join(bindir, 'pg_amcheck'), ['--all', '--heapallindexed', '--install-missing'], { all: true });
            const failures = await psql(sb, 'postgres', 'SELECT sum(checksum_failures), count(*) FILTER (WHERE checksum_failures > 0) FROM pg_stat_database');
            const pgbench = ['-n', '-c', '4', '-j', '2', '-t', '150', 'app'];
            const runs = [await sb.exec(join(bindir, 'pgbench'), pgbench, { all: true })];
            await psql(sb, 'app', 'CHECKPOINT');
            runs.push(await sb.exec(join(bindir, 'pgbench'), pgbench, { all: true }));
            const balances = await psql(sb, 'app', PGBENCH_BALANCES);
            await stopServers(sb);
            // pg_checksums reads the files itself, so through the same libraries as the server; only 15's exists here.
            const checksums =
              major === 15
                ? await sb.exec(join(bindir, 'pg_checksums'), ['--check', '-D', DATA_DIR], {
                    all: true,
                    env: lazyOpenEnv(presets[mechanism].copyUp!, DATA_DIR),
                  })
                : undefined;
            const log = sb.services.map((service) => service.log()).join('\n');
            return { reads, afterReads, ioMethod, writes, amcheck, failures, runs, balances, checksums, log, end: layerContents(upper, lowerData) };
          } finally {
            await sb.dispose();
          }
        } finally {
          dir.remove();
        }
      }

      it(`the server is PostgreSQL ${major}; one seeded cluster with data checksums serves all three copyUps`, async () => {
        expect(execFileSync(join(bindir, 'postgres'), ['--version'], { encoding: 'utf8' })).toContain(`(PostgreSQL) ${major}.`);
        await presets.overlay.prepare();
        await Promise.all([presets.pages.prepare(), presets['lazy-open'].prepare()]);
        expect(presets.pages.copyUp?.mechanism).toBe('pages');
        expect(presets['lazy-open'].copyUp?.mechanism).toBe('lazy-open');
        expect(presets.pages.cluster).toBe(presets.overlay.cluster);
        expect(presets['lazy-open'].cluster).toBe(presets.overlay.cluster);
      }, 240_000);

      it.each(MECHANISMS)(
        `copyUp %s: reads copy nothing up, the writes equal the plain overlay's, amcheck and checksums pass, pgbench -c 4 balances`,
        async (mechanism) => {
          await presets[mechanism].prepare();
          const result = await scenario(mechanism);
          const context = `PostgreSQL ${major}, copyUp ${mechanism}`;
          expect(result.reads, context).toMatch(/^100000\|/);
          if (mechanism === 'overlay') {
            expected.reads = result.reads;
            expected.writes = result.writes;
            expect(result.afterReads.copiedUp.length, context).toBeGreaterThan(5); // what the libraries spare
          } else {
            expect(result.reads, context).toBe(expected.reads);
            expect(result.afterReads.copiedUp, context).toEqual([]);
            expect(result.afterReads.deltas.files, context).toEqual([]);
            expect(result.writes, context).toBe(expected.writes);
            if (major >= 18) expect(result.ioMethod, context).toBe('sync');
          }
          expect(result.amcheck.all, context).toBe('');
          expect(result.amcheck.exitCode, context).toBe(0);
          expect(result.failures.trim(), context).toBe('0|0');
          expect(result.log, context).not.toMatch(CHECKSUM_ERRORS);
          expect(result.log, context).not.toMatch(/Bad file descriptor|runtime error/);
          for (const run of result.runs) expect(run.exitCode, `${context}: ${run.all}`).toBe(0);
          expect(result.balances.trim(), context).toBe('t|1200');
          if (result.checksums) {
            expect(result.checksums.all, context).toMatch(/Bad checksums:\s+0\b/);
            expect(result.checksums.exitCode, context).toBe(0);
          }
          if (mechanism === 'pages') {
            // Every write went through deltas: not one seeded file was copied up, and the maps are there.
            expect(result.end.copiedUp, context).toEqual([]);
            expect(result.end.deltas.files.filter((file) => file.endsWith('.map')).length, context).toBeGreaterThan(5);
          }
          if (mechanism === 'lazy-open') expect(result.end.copiedUp.length, context).toBeGreaterThan(0); // upgraded, not skipped
        },
        300_000,
      );
    });
  },
);
