// `sandbox-run -- CMD` as users run it: the built CLI in a child process.
import { readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { workdirMountPoint } from '../../src/sandbox/mounts.js';
import { CLI, eventually, mountCount, NODE, processesWith, tempDir } from './support.js';

const cli = (args: string[]) => execa(NODE, [CLI, ...args], { reject: false });

describe('sandbox-run -- CMD', () => {
  it('streams the output and exits with the command status', async () => {
    const result = await cli(['--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 9']);
    expect(result).toMatchObject({ exitCode: 9, stdout: 'out', stderr: 'err' });
  });

  it('takes the command without -- and leaves its options alone', async () => {
    const result = await cli(['--env', 'GREETING=hi', '/bin/sh', '-c', 'echo $GREETING $SANDBOX_RUN']);
    expect(result).toMatchObject({ exitCode: 0, stdout: 'hi 1' });
  });

  it.each([
    [['--bogus', '--', 'true'], 2, /^sandbox-run: Unknown argument: bogus\. See sandbox-run --help\.$/],
    [['--overlay', '/no/such/dir:/mnt', '--', 'true'], 2, /^sandbox-run: overlay source '\/no\/such\/dir' does not exist$/],
    [['--overlay', '/tmp:relative', '--', 'true'], 2, /^sandbox-run: overlay target 'relative' must be an absolute path inside the sandbox$/],
    [['--overlay', 'nocolon', '--', 'true'], 2, /^sandbox-run: --overlay 'nocolon': expected SRC:DST$/],
    [['--rlimit', 'nofile', '--', 'true'], 2, /^sandbox-run: --rlimit 'nofile': expected NAME=SOFT\[:HARD\]/],
    [['--network', 'wide', '--', 'true'], 2, /Invalid values/],
    [[], 2, /no command given/],
    [['--', 'no-such-command-xyz'], 127, /^sandbox-run: no-such-command-xyz: command not found$/],
  ])('rejects %j with exit %i and one line', async (args, code, message) => {
    const result = await cli(args);
    expect(result.exitCode).toBe(code);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('stops the command when the runner gets SIGTERM', async () => {
    const runner = execa(NODE, [CLI, '--', '/bin/sh', '-c', 'echo started; exec sleep 100'], { reject: false });
    await new Promise((resolve) => runner.stdout!.once('data', resolve));
    runner.kill('SIGTERM');
    const result = await runner;
    expect(result.exitCode).toBe(143);
  });

  it('leaves no process, mount or directory behind when the runner is killed with SIGKILL', async () => {
    const marker = `sigkill-marker-${process.pid}`;
    // The runner's own temporary and state directories, so that other tests' files do not count.
    const tmp = tempDir();
    const home = tempDir();
    try {
      const mountsBefore = mountCount();
      const runner = execa(NODE, [CLI, '--', '/bin/sh', '-c', `sleep 1001 & sleep 1002 & echo started; wait; : ${marker}`], {
        reject: false,
        env: { TMPDIR: tmp.path, SANDBOX_RUN_HOME: home.path },
      });
      await new Promise((resolve) => runner.stdout!.once('data', resolve));
      expect(processesWith(marker).length).toBeGreaterThan(0);
      runner.kill('SIGKILL');
      await runner;
      await eventually(() => processesWith(marker).length === 0, 2000, 'the sandbox to die with its runner');
      await eventually(() => processesWith('sleep 100').length === 0, 2000, 'the background sleeps to die');
      expect(mountCount()).toBe(mountsBefore);
      expect(readdirSync(tmp.path)).toEqual([]);
      // What the overlay probe found is remembered for this boot: no leftover.
      expect(readdirSync(home.path).filter((name) => name !== 'overlay-probe.json')).toEqual([]);
    } finally {
      tmp.remove();
      home.remove();
    }
  });

  it('prints the helper argument list for auditing', async () => {
    const home = tempDir('sandbox-run-empty-home-');
    try {
      const result = await execa(NODE, [CLI, '--print-helper-args', '--workdir', 'ro', '--tmpfs', '/scratch', '--', 'ls'], { env: { HOME: home.path } });
      // What is mounted follows the checkout's place (under /tmp, its top directory there); where the command starts does not.
      const mounted = workdirMountPoint(process.cwd());
      // Sizes follow the machine's RAM and masks its credential files: the rest is the same everywhere.
      const args = JSON.parse(result.stdout) as string[];
      // What follows the host: sizes from its memory, masks from its homes, the cgroup a delegated subtree gives (the plan's own).
      const hostDependent = new Set(['--tmpfs-size', '--upper-size', '--mask', '--cgroup']);
      expect(args.filter((arg, i) => !hostDependent.has(arg) && !hostDependent.has(args[i - 1]!))).toEqual([
        '--hostname',
        'sandbox',
        '--ro-bind',
        mounted,
        mounted,
        '--tmpfs',
        '/scratch',
        '--chdir',
        process.cwd(),
        '--rlimit',
        'core',
        '0',
        '0',
        '--rlimit',
        'nproc',
        '4096',
        '4096',
        '--',
        'ls',
      ]);
    } finally {
      home.remove();
    }
  });
});

describe('sandbox-run doctor', () => {
  it('passes every check on this machine and names each one', async () => {
    const result = await execa(NODE, [CLI, 'doctor', '--json'], { reject: false });
    const checks = JSON.parse(result.stdout) as { name: string; status: string }[];
    expect(checks.map((check) => check.name)).toEqual(
      expect.arrayContaining(['kernel', 'user namespaces allowed', 'helper', 'sandbox starts', 'overlayfs in a user namespace', 'layer tools']),
    );
    expect(checks.filter((check) => check.status === 'fail')).toEqual([]);
    expect(result.exitCode).toBe(0);
  });

  it('fails the layer tools check in one line when mknod is missing', async () => {
    const bin = tempDir('sandbox-run-no-tools-');
    try {
      symlinkSync(NODE, join(bin.path, 'node'));
      const result = await execa(NODE, [CLI, 'doctor'], { reject: false, env: { PATH: bin.path } });
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toMatch(/^FAIL {2}layer tools: mknod is needed to restore whiteouts: install coreutils$/m);
    } finally {
      bin.remove();
    }
  });

  it('names a missing helper and the fix', async () => {
    const result = await execa(NODE, [CLI, 'doctor'], { reject: false, env: { SANDBOX_RUN_HELPER: '/nonexistent/helper' } });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/FAIL {2}helper: the sandbox helper \/nonexistent\/helper is missing/);
    const run = await execa(NODE, [CLI, '--', 'true'], { reject: false, env: { SANDBOX_RUN_HELPER: '/nonexistent/helper' } });
    expect(run.exitCode).toBe(125);
    expect(run.stderr).toMatch(/^sandbox-run: the sandbox helper \/nonexistent\/helper is missing or not executable: run `npm rebuild sandbox-run`/);
  });

  it('names a helper that is there but not executable', async () => {
    const dir = tempDir();
    try {
      const helper = `${dir.path}/sandbox-helper`;
      writeFileSync(helper, '#!/bin/sh\n', { mode: 0o644 });
      const run = await execa(NODE, [CLI, '--', 'true'], { reject: false, env: { SANDBOX_RUN_HELPER: helper } });
      expect(run.exitCode).toBe(125);
      expect(run.stderr).toBe(
        `sandbox-run: the sandbox helper ${helper} is missing or not executable: ` +
          'run `npm rebuild sandbox-run` (needs a C compiler), or set SANDBOX_RUN_HELPER',
      );
    } finally {
      dir.remove();
    }
  });

  // A real kernel without user namespaces for us: a user namespace whose
  // user.max_user_namespaces is 0 (each namespace has its own limit).
  it('names user.max_user_namespaces=0 as the cause, and the runner fails with one line', async () => {
    const blocked = (args: string) =>
      execa('unshare', ['-Ur', 'sh', '-c', `echo 0 > /proc/sys/user/max_user_namespaces && exec ${NODE} ${CLI} ${args}`], { reject: false });
    const doctor = await blocked('doctor --json');
    expect(doctor.exitCode).toBe(1);
    const checks = JSON.parse(doctor.stdout) as { name: string; status: string; detail: string; remedy?: string }[];
    expect(checks.find((check) => check.name === 'user namespaces allowed')).toMatchObject({
      status: 'fail',
      detail: 'user.max_user_namespaces is 0',
      remedy: expect.stringContaining('sysctl -w user.max_user_namespaces='),
    });
    expect(checks.find((check) => check.name === 'sandbox starts')?.status).toBe('fail');
    const run = await blocked('-- true');
    expect(run.exitCode).toBe(125);
    expect(run.stderr).toBe("sandbox-run: cannot create user namespace: user.max_user_namespaces is 0 or used up (run 'sandbox-run doctor' for the fix)");
  });
});
