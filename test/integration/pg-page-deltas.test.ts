// copyUp 'pages' seen from outside the server: a failed job's sandbox is kept (--keep-failed) with its deltas;
// inside the job, `LD_PRELOAD=$SANDBOX_RUN_PG_PRELOAD` lets pg_checksums and stat see the merged files; `sandbox-run
// diff` reports the written relation files, not pages/; `sandbox-run open` (copy-on-write and --rw) serves the rows the
// job wrote. Runs the CLI from source (tsx), against real PostgreSQL 15 on real overlayfs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE, ROOT, tempDir } from './support.js';

const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());

const cli = (args: string[], cwd: string) =>
  execa(NODE, ['--import', TSX, MAIN, ...args], { cwd, reject: false, env: { SANDBOX_RUN_HOME: home.path, CI: '1' }, extendEnv: true });

// The job extends the seeded table (so its size differs merged and unmerged), checks with and without the library, fails.
const JOB = `set -e
psql -v ON_ERROR_STOP=1 -qc "update accounts set balance = 7 where id <= 3; insert into accounts select g, 1 from generate_series(51, 20000) g; checkpoint"
f="$PGDATA/$(psql -tAc "select pg_relation_filepath('accounts')")"
echo "plain $(stat -c %s "$f")" > sizes.txt
echo "merged $(LD_PRELOAD=$SANDBOX_RUN_PG_PRELOAD stat -c %s "$f")" >> sizes.txt
echo "server $(psql -tAc "select pg_relation_size('accounts')")" >> sizes.txt
psql -qc "checkpoint"
exit 1
`;

describe("a kept copyUp 'pages' sandbox", () => {
  const dir = tempDir('sandbox-run-pages-');
  writeFileSync(
    join(dir.path, 'sandbox.config.json'),
    JSON.stringify({ presets: [{ postgres: { database: 'shop', copyUp: 'pages', checksums: true, seed: { sql: ['seed.sql'] } } }] }),
  );
  writeFileSync(
    join(dir.path, 'seed.sql'),
    'create table accounts (id int primary key, balance int not null); insert into accounts select g, 100 from generate_series(1, 50) g;',
  );
  writeFileSync(join(dir.path, 'job.sh'), JOB);
  afterAll(() => dir.remove());
  let kept = '';

  it('inside the job, SANDBOX_RUN_PG_PRELOAD shows tools the merged files; the failed job is kept', async () => {
    const json = join(dir.path, 'summary.json');
    const result = await cli(['--each', 'job.sh', '--keep-failed', '--output', 'quiet', '--json', json, '--', 'sh', '{}'], dir.path);
    expect(result.exitCode, result.stderr).toBe(1);
    kept = (JSON.parse(readFileSync(json, 'utf8')) as { results: { kept?: string }[] }).results[0]!.kept!;
    expect(kept).toBeTruthy();
    const manifest = JSON.parse(readFileSync(join(kept, 'kept.json'), 'utf8'));
    expect(manifest.services[0].env.LD_PRELOAD).toMatch(/pg-page-cow\.so .*pg-lazy-write\.so$/);
    expect(manifest.exports.SANDBOX_RUN_PG_PRELOAD).toBe(manifest.services[0].env.LD_PRELOAD);
    expect(manifest.exports.PGDATA).toBe('/tmp/sandbox-run-postgres/data');
  }, 180_000);

  it('opens copy-on-write with the rows the job wrote; pg_checksums passes through the library; merged sizes as the server saw', async () => {
    const open = (args: string[]) => cli(['open', kept, '--', ...args], dir.path);
    const rows = await open(['psql', '-tAc', 'select count(*), sum(balance) from accounts']);
    expect(rows.exitCode, rows.stderr).toBe(0);
    expect(rows.stdout.trim()).toBe(`20000|${47 * 100 + 3 * 7 + 19950}`);
    const sizes = await open(['cat', 'sizes.txt']);
    const [plain, merged, server] = sizes.stdout
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[1]));
    expect(merged).toBe(server);
    expect(plain).toBeLessThan(merged!); // the seeded file on disk is unchanged: the writes are in the delta
    // pg_checksums wants the server down: the kept files alone (the exports still name the library and the dirs).
    const check = 'LD_PRELOAD=$SANDBOX_RUN_PG_PRELOAD "$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)/pg_checksums" --check -D "$PGDATA"';
    const checksums = await cli(['open', kept, '--no-services', '--', 'sh', '-c', check], dir.path);
    expect(checksums.stdout, checksums.stderr).toMatch(/Bad checksums:\s+0\b/);
    expect(checksums.exitCode).toBe(0);
  }, 120_000);

  it('diff reports the written relation files with their blocks, not the pages/ bookkeeping', async () => {
    const diff = await cli(['diff', kept], dir.path);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).not.toMatch(/\/pages\b/);
    expect(diff.stdout).toMatch(/^C \/tmp\/sandbox-run-postgres\/data\/base\/\d+\/\d+ \(\d+ blocks? written, copyUp 'pages'\)$/m);
    const json = JSON.parse((await cli(['diff', kept, '--json'], dir.path)).stdout) as { kind: string; path: string; blocks?: number }[];
    expect(json.filter((e) => e.blocks).length).toBeGreaterThan(0);
    expect(json.some((e) => e.path.includes('/pages'))).toBe(false);
  }, 60_000);

  it('opens --rw: a write lands in the kept layer, and a copy-on-write open afterwards sees it', async () => {
    const rw = await cli(
      ['open', kept, '--rw', '--', 'psql', '-tAc', 'update accounts set balance = 0 where id = 1; select balance from accounts where id = 2'],
      dir.path,
    );
    expect(rw.exitCode, rw.stderr).toBe(0);
    expect(rw.stdout.trim().split('\n').pop()).toBe('7');
    const after = await cli(['open', kept, '--', 'psql', '-tAc', 'select balance from accounts where id = 1'], dir.path);
    expect(after.exitCode, after.stderr).toBe(0);
    expect(after.stdout.trim()).toBe('0');
  }, 120_000);
});
