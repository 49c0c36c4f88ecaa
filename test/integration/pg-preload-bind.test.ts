// The postgres preset's preloaded libraries where a sandbox cannot see them: a checkout under /tmp (a CI job's) has
// its helper/build there, and every sandbox's /tmp is its own. The loader skips a missing LD_PRELOAD entry with a
// warning, so without the bind the server ran on a plain overlay while the preset said 'pages'. The libraries are
// copied to a directory of their own under /tmp here (SANDBOX_RUN_PG_*_LIBRARY), wherever this checkout lives, and
// the job, in another /tmp directory, looks at the running server's own mappings.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { hiddenInSandbox } from '../../src/sandbox/mounts.js';
import { NODE, ROOT, tempDir } from './support.js';

const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

describe('preloaded libraries in a directory the sandbox does not see', () => {
  const home = tempDir('sandbox-run-home-');
  const libs = tempDir('sandbox-run-libs-');
  const project = tempDir('sandbox-run-preload-');
  afterAll(() => [home, libs, project].forEach((dir) => dir.remove()));
  // A root caller's sandbox runs as 65534: the copies must be readable by others, as the build makes them.
  chmodSync(libs.path, 0o755);
  const lib = join(libs.path, 'build');
  mkdirSync(lib, { mode: 0o755 });
  for (const name of ['pg-page-cow.so', 'pg-lazy-write.so']) {
    copyFileSync(join(ROOT, 'helper/build', name), join(lib, name));
    chmodSync(join(lib, name), 0o755);
  }
  writeFileSync(join(project.path, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { seed: { sql: ['seed.sql'] } } }] }));
  writeFileSync(join(project.path, 'seed.sql'), 'create table t (id int primary key, v int); insert into t select g, 0 from generate_series(1, 5000) g;');
  // The postmaster's mappings name the libraries it loaded; the 1-row update must leave a delta, not a copied-up file.
  writeFileSync(
    join(project.path, 'job.sh'),
    `set -e
psql -qc "update t set v = 1 where id = 1; checkpoint"
grep -oE '[^ ]*(pg-page-cow|pg-lazy-write)\\.so' "/proc/$(head -1 "$PGDATA/postmaster.pid")/maps" | sort -u
f=$(psql -tAc "select pg_relation_filepath('t')")
ls "$PGDATA/../pages/$f.map"
`,
  );

  it('are bound in read-only at their own paths: the server loads them, and a write leaves a delta', async () => {
    expect(hiddenInSandbox(lib)).toBe(true); // else this test would prove nothing
    const result = await execa(NODE, ['--import', TSX, MAIN, '--output', 'quiet', '--', 'sh', 'job.sh'], {
      cwd: project.path,
      reject: false,
      all: true,
      env: {
        SANDBOX_RUN_HOME: home.path,
        SANDBOX_RUN_PG_PAGES_LIBRARY: join(lib, 'pg-page-cow.so'),
        SANDBOX_RUN_PG_LAZY_LIBRARY: join(lib, 'pg-lazy-write.so'),
      },
    });
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain(join(lib, 'pg-page-cow.so'));
    expect(result.stdout).toContain(join(lib, 'pg-lazy-write.so'));
    expect(result.stdout).toMatch(/pages\/base\/\d+\/\d+\.map$/m);
  }, 180_000);

  it('a library the loader skips (not an ELF file) fails the start in one line, instead of running without it', async () => {
    const bogus = join(lib, 'bogus.so');
    writeFileSync(bogus, 'not a shared object\n', { mode: 0o644 });
    const result = await execa(NODE, ['--import', TSX, MAIN, '--output', 'quiet', '--', 'true'], {
      cwd: project.path,
      reject: false,
      all: true,
      env: { SANDBOX_RUN_HOME: home.path, SANDBOX_RUN_PG_PAGES_LIBRARY: bogus, SANDBOX_RUN_PG_LAZY_LIBRARY: join(lib, 'pg-lazy-write.so') },
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/service postgres is not running as asked: ld\.so: object '[^']*bogus\.so' from LD_PRELOAD cannot be preloaded/);
  }, 180_000);
});
