// Writable layers on disk, the mode of Linux 5.11-6.5 (tmpfs holds no user.*
// xattrs there), forced here with SANDBOX_RUN_OVERLAY=disk: copy-on-write
// that survives rm -r of a lower directory and renames, nothing on the host
// changed, nothing left behind, even after SIGKILL of the runner.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Sandbox } from '../../src/index.js';
import { removeTree } from '../../src/process/sweep.js';
import { upperPlacement } from '../../src/sandbox/upper-placement.js';
import { eventually, NODE, tempDir, treeDigest } from './support.js';

// Renames and removals by system call: mv and rm -r would hide an EXDEV behind a copy.
const SCRIPT = `
  const fs = require('node:fs');
  fs.rmSync('dir', { recursive: true });
  fs.mkdirSync('new');
  fs.writeFileSync('new/file', 'new');
  fs.renameSync('new', 'renamed');
  fs.renameSync('top.txt', 'moved.txt');
  fs.writeFileSync('moved.txt', 'changed');
  fs.rmSync('/mnt/data', { recursive: true });
  fs.mkdirSync('/mnt/data');
  fs.writeFileSync('/mnt/data/other.txt', 'x');
  const upper = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\\n')
    .filter((line) => / - overlay /.test(line))
    .map((line) => /upperdir=([^,]+)/.exec(line)[1]);
  console.log(JSON.stringify({ cwd: fs.readdirSync('.').sort(), mnt: fs.readdirSync('/mnt/data'), upper }));
`;

describe('writable layers on disk (SANDBOX_RUN_OVERLAY=disk)', () => {
  // Outside /tmp, so that the sandbox's own fresh /tmp does not hide the uppers from the masking check.
  const home = mkdtempSync('/var/tmp/sandbox-run-home-');
  const uppers = join(home, 'uppers');
  const project = tempDir();
  const layer = tempDir();
  beforeAll(() => {
    process.env.SANDBOX_RUN_OVERLAY = 'disk';
    process.env.SANDBOX_RUN_HOME = home;
    mkdirSync(join(project.path, 'dir', 'sub'), { recursive: true });
    writeFileSync(join(project.path, 'dir', 'sub', 'file.txt'), 'lower\n');
    writeFileSync(join(project.path, 'top.txt'), 'top\n');
    mkdirSync(join(layer.path, 'data'), { mode: 0o700 });
    writeFileSync(join(layer.path, 'data', 'seed.txt'), 'seed\n');
  });
  afterAll(() => {
    delete process.env.SANDBOX_RUN_OVERLAY;
    delete process.env.SANDBOX_RUN_HOME;
    removeTree(home);
    project.remove();
    layer.remove();
  });

  it('is the mode the probe chose, and the probe leaves nothing behind', () => {
    expect(upperPlacement()).toEqual({ mode: 'disk', dir: uppers, reason: 'SANDBOX_RUN_OVERLAY=disk' });
    expect(readdirSync(uppers)).toEqual([]);
  });

  it('removes lower directories, renames new ones, keeps the host unchanged and removes its uppers', async () => {
    const before = { project: treeDigest(project.path), layer: treeDigest(layer.path) };
    const result = await run(NODE, ['-e', SCRIPT], { cwd: project.path, overlays: [{ lower: layer.path, target: '/mnt' }] });
    expect(result.stderr).toBe('');
    const seen = JSON.parse(result.stdout) as { cwd: string[]; mnt: string[]; upper: string[] };
    expect(seen.cwd).toEqual(['moved.txt', 'renamed']);
    expect(seen.mnt).toEqual(['other.txt']);
    // Both overlays have their upper on disk under the home (as the helper saw it), none on its tmpfs.
    expect(seen.upper).toHaveLength(2);
    for (const upper of seen.upper) expect(upper).toMatch(new RegExp(`${uppers}/${process.pid}-[a-z0-9]+/\\d/upper$`));
    expect(treeDigest(project.path)).toBe(before.project);
    expect(treeDigest(layer.path)).toBe(before.layer);
    expect(readdirSync(uppers)).toEqual([]);
  });

  it('keeps one sandbox from seeing another one’s writable layer', async () => {
    await using holder = await Sandbox.create({ cwd: project.path });
    await holder.exec('/bin/sh', ['-c', 'echo secret > secret.txt']);
    expect(readdirSync(uppers)).toHaveLength(1);
    const peek = await run('/bin/sh', ['-c', `ls -A ${uppers}; grep -rl secret ${home} || true`], { cwd: project.path });
    expect(peek.stdout).toBe('');
  });

  it('removes the uppers of a live sandbox when it is disposed, read-only dirs and overlay work dirs included', async () => {
    {
      await using sb = await Sandbox.create({ cwd: project.path });
      expect((await sb.exec('/bin/sh', ['-c', 'mkdir -p ro/inner && echo x > ro/inner/f && chmod 555 ro/inner ro && rm -r dir && ls'])).stdout).toBe(
        'ro\ntop.txt',
      );
      expect(readdirSync(uppers)).toHaveLength(1);
    }
    expect(readdirSync(uppers)).toEqual([]);
  });

  it('sweeps the uppers of a runner killed with SIGKILL at the next start', async () => {
    const script = `import { Sandbox } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).pathname)};
      const sb = await Sandbox.create({ cwd: ${JSON.stringify(project.path)} });
      await sb.exec('/bin/sh', ['-c', 'mkdir -p ro && echo x > ro/f && chmod 555 ro && rm -r dir']);
      console.log(sb.pid); setInterval(() => {}, 1000);`;
    const child = execa(NODE, ['--input-type=module', '-e', script], {
      reject: false,
      buffer: false,
      stdout: 'pipe',
      env: { SANDBOX_RUN_OVERLAY: 'disk', SANDBOX_RUN_HOME: home },
    });
    const pid = Number(await new Promise<string>((resolve) => child.stdout!.once('data', (data: Buffer) => resolve(String(data)))));
    const leftover = readdirSync(uppers);
    expect(leftover).toEqual([expect.stringMatching(new RegExp(`^${child.pid}-`))]);
    child.kill('SIGKILL');
    await child;
    await eventually(() => !existsSync(`/proc/${pid}`), 2000, 'the killed runner’s sandbox to die');
    expect(readdirSync(join(uppers, leftover[0]!))).toEqual(['0']);
    await run('true', [], { cwd: project.path });
    expect(readdirSync(uppers)).toEqual([]);
  });

  it('warns once that --upper-size does not bind a writable layer on disk', async () => {
    const result = await execa(NODE, ['dist/cli/main.js', '--upper-size', '64m', '--', 'true'], {
      env: { SANDBOX_RUN_OVERLAY: 'disk', SANDBOX_RUN_HOME: home },
    });
    expect(result.stderr).toBe(
      `sandbox-run: warning: --upper-size is not enforced: the writable layer is on disk under ${uppers} ` +
        '(tmpfs cannot hold it before Linux 6.6); see sandbox-run doctor',
    );
  });

  it('probes with a fixed PATH: a caller without rm or mv on its PATH gets the same verdict', async () => {
    rmSync(join(home, 'overlay-probe.json'), { force: true }); // probe afresh
    const result = await execa(NODE, ['dist/cli/main.js', '--', '/bin/true'], {
      reject: false,
      env: { PATH: '/nonexistent', SANDBOX_RUN_OVERLAY: 'disk', SANDBOX_RUN_HOME: home },
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it('refuses a forced mode whose probe fails, in one line', async () => {
    const badHome = tempDir();
    try {
      writeFileSync(join(badHome.path, 'uppers'), 'not a directory');
      const result = await execa(NODE, ['dist/cli/main.js', '--', 'true'], {
        reject: false,
        env: { SANDBOX_RUN_OVERLAY: 'disk', SANDBOX_RUN_HOME: badHome.path },
      });
      expect(result.exitCode).toBe(125);
      expect(result.stderr).toMatch(
        new RegExp(
          `^sandbox-run: SANDBOX_RUN_OVERLAY=disk, but copy-on-write with the upper at ${badHome.path}/uppers is broken: .+; run 'sandbox-run doctor'$`,
        ),
      );
    } finally {
      badHome.remove();
    }
  });
});
