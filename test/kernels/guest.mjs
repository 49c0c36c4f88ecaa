// Runs inside the kernel-matrix guest as an unprivileged user (see run.mjs):
// the checks that broke on Linux 5.12-6.5, kept small because the guest's
// CPU is emulated. Uses dist/, like an installed package.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createSandbox, openStore, postgres, run } from '../../dist/index.js';
import { upperPlacement } from '../../dist/sandbox/upper-placement.js';

const scratch = process.argv[2];
assert.ok(scratch, 'usage: guest.mjs SCRATCH_DIR');
let failed = 0;

async function check(name, body) {
  const start = performance.now();
  try {
    await body();
    console.log(`ok   ${name} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name}: ${String(error?.stack ?? error)}`);
  }
}

function digest(dir) {
  const hash = createHash('sha256');
  const walk = (path, rel) => {
    const st = lstatSync(path);
    hash.update(`${rel}\0${st.mode}\0${st.size}\0`);
    if (st.isFile()) hash.update(readFileSync(path));
    else if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name), `${rel}/${name}`);
  };
  walk(dir, '.');
  return hash.digest('hex');
}

function tree(dir, files) {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

console.log(`kernel ${release()}, uid ${process.getuid()}, SANDBOX_RUN_HOME=${process.env.SANDBOX_RUN_HOME}`);

await check('the probe puts writable layers on disk (tmpfs holds no user.* xattrs here)', () => {
  const placement = upperPlacement();
  assert.equal(placement.mode, 'disk', `placement: ${JSON.stringify(placement)}`);
  console.log(`     ${placement.reason}`);
});

await check('a forced tmpfs upper is refused in one line, naming what broke', async () => {
  process.env.SANDBOX_RUN_OVERLAY = 'tmpfs';
  try {
    await assert.rejects(
      run('true', []),
      new RegExp(
        [
          /^SandboxError: SANDBOX_RUN_OVERLAY=tmpfs, but copy-on-write on tmpfs is broken here: /.source,
          /removing and re-creating a lower directory failed: .*Input\/output error; run 'sandbox-run doctor'$/.source,
        ].join(''),
      ),
    );
  } finally {
    delete process.env.SANDBOX_RUN_OVERLAY;
  }
});

await check('a sandbox removes, renames and writes its working directory; the host copy is unchanged', async () => {
  const project = join(scratch, 'project');
  tree(project, { 'src/index.js': 'x\n', 'src/lib/util.js': 'y\n', 'README.md': 'readme\n' });
  const before = digest(project);
  // mv would hide a failed rename (EXDEV) behind a copy: the inode number tells.
  const script = [
    'set -e',
    'rm -r src',
    'mkdir build && ino=$(stat -c %i build) && mv build dist && test "$(stat -c %i dist)" = "$ino"',
    'echo changed > README.md && echo new > dist/out.js',
    'ls -A . dist && cat README.md',
  ].join('\n');
  const result = await run('/bin/sh', ['-c', script], { cwd: project });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, '.:\nREADME.md\ndist\n\ndist:\nout.js\nchanged');
  assert.equal(digest(project), before);
  assert.deepEqual(readdirSync(join(process.env.SANDBOX_RUN_HOME, 'uppers')), []);
});

await check('a layer build deletes a parent file (whiteout) and replaces a parent directory (opaque)', async () => {
  const store = await openStore();
  const parentDir = join(scratch, 'parent');
  tree(parentDir, { 'keep.txt': 'keep\n', 'gone.txt': 'gone\n', 'dir/old.txt': 'old\n' });
  await store.snapshot(parentDir, { name: 'km-parent' });
  const child = await store.build({
    name: 'km-child',
    parent: 'km-parent',
    mountPoint: '/tmp/layer',
    run: ['/bin/sh', '-c', 'cd /tmp/layer && rm gone.txt && rm -r dir && mkdir dir && echo new > dir/new.txt'],
  });
  const result = await run('/bin/sh', ['-c', 'cd /tmp/layer && ls -A . dir'], {
    workdir: 'none',
    overlays: [{ lower: await store.lowerDirs(child.digest), target: '/tmp/layer' }],
  });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, '.:\ndir\nkeep.txt\n\ndir:\nnew.txt');
});

await check('an image as the root (--image): its files as /, writes to a disk upper, thrown away', async () => {
  // A one-file image: busybox-static as /bin/sh (the host's; CI installs it).
  const imageDir = join(scratch, 'image');
  mkdirSync(join(imageDir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(imageDir, 'bin/busybox'));
  chmodSync(join(imageDir, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(imageDir, 'bin/sh'));
  const store = await openStore();
  await store.snapshot(imageDir, { name: 'km-image' });
  const script = 'echo written > /made.txt && cat /made.txt && ls /usr/bin/node 2>&1 || true; id -un';
  const result = await run('/bin/sh', ['-c', script], { image: 'km-image', workdir: 'none', env: { PATH: '/bin' } });
  assert.equal(result.exitCode, 0, result.stderr);
  const [written, node] = result.stdout.split('\n');
  assert.equal(written, 'written');
  assert.match(node, /No such file/);
  assert.deepEqual(readdirSync(join(process.env.SANDBOX_RUN_HOME, 'uppers')), []);
});

await check("a PostgreSQL preset sandbox answers a query; copyUp's default, pages, writes a delta, not the file", async () => {
  const seed =
    'psql -q -c "CREATE TABLE t AS SELECT 42 AS answer" -c "CREATE TABLE big AS SELECT g AS id, repeat(\'x\', 200) AS pad FROM generate_series(1, 20000) g"';
  const preset = postgres({ database: 'km', seed: { command: seed } });
  await preset.prepare();
  const sb = await createSandbox({ workdir: 'none', presets: [preset] });
  const client = new pg.Client(sb.env.DATABASE_URL);
  try {
    await client.connect();
    assert.equal(preset.copyUp?.mechanism, 'pages', preset.copyUp?.reason);
    await client.query('INSERT INTO t VALUES (43)');
    await client.query("UPDATE big SET pad = 'y' WHERE id <= 10");
    await client.query('CHECKPOINT');
    const { rows } = await client.query(
      "SELECT (SELECT sum(answer)::int FROM t) AS s, (SELECT count(*)::int FROM big WHERE pad = 'y') AS y, pg_relation_filepath('big') AS path",
    );
    assert.equal(rows[0].s, 85);
    assert.equal(rows[0].y, 10);
    // The written blocks went to the delta beside the data; the seeded 4.6 MB file was never opened for writing.
    const listing = await sb.exec('/bin/sh', [
      '-c',
      `ls /tmp/sandbox-run-postgres/pages/${rows[0].path}.map && du -k /tmp/sandbox-run-postgres/pages/${rows[0].path}`,
    ]);
    assert.equal(listing.exitCode, 0, listing.stderr);
    assert.ok(Number(listing.stdout.split('\n')[1].split('\t')[0]) < 1024, listing.stdout);
  } finally {
    await client.end().catch(() => {});
    await sb.dispose();
  }
});

console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
process.exitCode = failed ? 1 : 0;
