// The C helper against the real kernel, run both as built for users and with
// AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the run:
// the sanitized build aborts on the first error).
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELPERS, INSIDE_UID, tempDir, treeDigest } from './support.js';

// LeakSanitizer's exit-time check ptraces the process from a helper thread,
// which hangs once the process has entered a user namespace: leaks are not
// checked, every other ASan and UBSan check is.
const env = { ASAN_OPTIONS: 'detect_leaks=0' };

describe.each(Object.entries(HELPERS))('helper (%s build)', (_build, helper) => {
  const sandbox = (args: string[], command: string) => execa(helper, [...args, '--', '/bin/sh', '-c', command], { reject: false, env });

  let work: ReturnType<typeof tempDir>;
  beforeAll(() => {
    work = tempDir();
    mkdirSync(join(work.path, 'lower/sub'), { recursive: true });
    writeFileSync(join(work.path, 'lower/keep.txt'), 'original\n');
    writeFileSync(join(work.path, 'lower/sub/delete-me.txt'), 'doomed\n');
  });
  afterAll(() => work.remove());

  it('runs as a non-root uid with no effective capabilities', async () => {
    const { stdout, exitCode } = await sandbox([], 'id -u; grep CapEff /proc/self/status');
    expect(exitCode).toBe(0);
    const [uid, caps] = stdout.split('\n');
    expect(Number(uid)).toBe(INSIDE_UID);
    expect(Number(uid)).not.toBe(0);
    expect(caps).toMatch(/^CapEff:\s+0+$/);
  });

  it('makes /, /etc and /usr read-only', async () => {
    const { stdout } = await sandbox([], 'for p in /x /etc/x /usr/x; do touch $p 2>/dev/null && echo wrote $p || echo refused $p; done');
    expect(stdout.split('\n')).toEqual(['refused /x', 'refused /etc/x', 'refused /usr/x']);
  });

  it('throws away writes to an overlay while the lower directory stays byte-for-byte unchanged', async () => {
    const lower = join(work.path, 'lower');
    const before = treeDigest(lower);
    const { stdout, exitCode } = await sandbox(
      ['--overlay', lower, '/mnt', '--chdir', '/mnt'],
      'echo changed > keep.txt && rm sub/delete-me.txt && echo new > new.txt && cat keep.txt && ls sub | wc -l && ls',
    );
    expect(exitCode).toBe(0);
    expect(stdout.split('\n')).toEqual(['changed', '0', 'keep.txt', 'new.txt', 'sub']);
    expect(treeDigest(lower)).toBe(before);
  });

  it('binds directories and files read-write or read-only', async () => {
    const dir = join(work.path, 'binds');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'file.txt'), 'host\n');
    const rw = await sandbox(['--bind', dir, '/mnt'], 'echo from-sandbox > /mnt/out.txt');
    expect(rw.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('from-sandbox\n');
    const ro = await sandbox(
      ['--ro-bind', dir, '/mnt', '--ro-bind', join(dir, 'file.txt'), '/tmp/file.txt'],
      'cat /tmp/file.txt; touch /mnt/x 2>/dev/null || echo dir-ro; echo x 2>/dev/null > /tmp/file.txt || echo file-ro',
    );
    expect(ro.stdout.split('\n')).toEqual(['host', 'dir-ro', 'file-ro']);
  });

  it('stacks several lower directories, top first', async () => {
    const top = join(work.path, 'top');
    mkdirSync(top, { recursive: true });
    writeFileSync(join(top, 'keep.txt'), 'from top\n');
    const { stdout } = await sandbox(['--overlay', `${top}:${join(work.path, 'lower')}`, '/mnt'], 'cat /mnt/keep.txt; ls /mnt');
    expect(stdout.split('\n')).toEqual(['from top', 'keep.txt', 'sub']);
  });

  it('gives the overlay root the lower root mode (PostgreSQL wants 0700)', async () => {
    const data = join(work.path, 'pgdata');
    mkdirSync(data, { mode: 0o700 });
    const { stdout } = await sandbox(['--overlay', data, '/mnt'], 'stat -c %a /mnt');
    expect(stdout).toBe('700');
  });

  it("isolates pids: only the sandbox is visible and the command is pid 1's child", async () => {
    const { stdout } = await sandbox([], 'echo $PPID; ls /proc | grep -c "^[0-9]"');
    const [ppid, count] = stdout.split('\n');
    expect(ppid).toBe('1');
    // init, sh, ls, grep
    expect(Number(count)).toBeLessThanOrEqual(4);
  });

  it('isolates ipc and uts namespaces', async () => {
    const { stdout } = await sandbox([], 'readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname');
    const [ipc, uts, name] = stdout.split('\n');
    expect(ipc).not.toBe(readlinkSync('/proc/self/ns/ipc'));
    expect(uts).not.toBe(readlinkSync('/proc/self/ns/uts'));
    expect(name).toBe('sandbox');
    expect(hostname()).not.toBe('sandbox');
  });

  it('gives a private, empty /tmp and /dev/shm', async () => {
    writeFileSync(join('/dev/shm', `sandbox-run-marker-${process.pid}`), 'x');
    try {
      const { stdout } = await sandbox([], 'ls -A /tmp /dev/shm; touch /tmp/a /dev/shm/b && echo writable');
      expect(stdout.split('\n')).toEqual(['/dev/shm:', '', '/tmp:', 'writable']);
    } finally {
      await execa('rm', ['-f', join('/dev/shm', `sandbox-run-marker-${process.pid}`)]);
    }
  });

  it('provides a usable /dev', async () => {
    const { stdout, exitCode } = await sandbox(
      [],
      'head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok; test -c /dev/zero && echo zero-ok; ls /dev/pts/ptmx',
    );
    expect(exitCode).toBe(0);
    expect(stdout.split('\n')).toEqual(['4', 'null-ok', 'zero-ok', '/dev/pts/ptmx']);
  });

  it('brings loopback up in its own network namespace, with nothing else in it', async () => {
    const { stdout } = await sandbox([], 'ls /sys/class/net; cat /sys/class/net/lo/flags; readlink /proc/self/ns/net');
    const [devices, flags, ns] = stdout.split('\n');
    expect(devices).toBe('lo');
    expect(Number(flags) & 1).toBe(1); // IFF_UP
    expect(ns).not.toBe(readlinkSync('/proc/self/ns/net'));
    const shared = await sandbox(['--share-net'], 'readlink /proc/self/ns/net');
    expect(shared.stdout).toBe(readlinkSync('/proc/self/ns/net'));
  });

  it('propagates exit codes and signals as 128+N', async () => {
    expect((await sandbox([], 'exit 42')).exitCode).toBe(42);
    expect((await sandbox([], 'kill -TERM $$')).exitCode).toBe(143);
    expect((await sandbox([], 'kill -KILL $$')).exitCode).toBe(137);
  });

  it('sets environment, hostname, working directory and rlimits', async () => {
    const { stdout } = await execa(
      helper,
      [
        '--clearenv',
        '--setenv',
        'A',
        '1',
        '--setenv',
        'PATH',
        '/usr/bin:/bin',
        '--unsetenv',
        'A',
        '--setenv',
        'B',
        '2',
        '--hostname',
        'box',
        '--chdir',
        '/usr',
        '--rlimit',
        'nofile',
        '64',
        '64',
        '--',
        '/bin/sh',
        '-c',
        'echo "${A-unset} $B $(hostname) $(pwd) $(ulimit -n)"',
      ],
      { env },
    );
    expect(stdout).toBe('unset 2 box /usr 64');
  });

  it('refuses to mount through symlinks or .. out of the new root', async () => {
    const outside = join(work.path, 'escape-link');
    symlinkSync('/etc', outside);
    const viaDots = await sandbox(['--tmpfs', '/tmp/../etc'], 'true');
    expect(viaDots.exitCode).toBe(125);
    expect(viaDots.stderr).toMatch(/must not contain '\.' or '\.\.'/);
    // A symlink in the target resolves inside the sandbox root, never on the host.
    const viaLink = await sandbox(['--bind', work.path, '/tmp/w', '--tmpfs', '/tmp/w/escape-link'], 'ls -A /etc | wc -l');
    expect(viaLink.exitCode).toBe(0);
    expect(Number(viaLink.stdout)).toBe(0);
  });

  it('fails with one line and a distinct code on bad input', async () => {
    const cases: [string[], number, RegExp][] = [
      [['--bogus', '--', 'true'], 125, /unknown option '--bogus'/],
      [['--overlay', '/nonexistent-dir', '/mnt', '--', 'true'], 125, /overlay lower '\/nonexistent-dir'/],
      [['--tmpfs', 'relative', '--', 'true'], 125, /must be an absolute path/],
      [['--rlimit', 'nofile', 'many', '1', '--', 'true'], 125, /expected a number/],
      [['--', 'no-such-command-xyz'], 127, /no-such-command-xyz: command not found/],
      [['--', '/etc/passwd'], 126, /\/etc\/passwd: Permission denied/],
    ];
    for (const [args, code, message] of cases) {
      const result = await execa(helper, args, { reject: false, env });
      expect({ args, code: result.exitCode }).toEqual({ args, code });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('joins a live sandbox: same mounts, pids and network', async () => {
    const info = execa(helper, ['--info-fd', '3', '--'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], reject: false, env });
    const line = await new Promise<string>((resolve) => info.stdio[3]!.once('data', (chunk) => resolve(String(chunk))));
    const { pid } = JSON.parse(line) as { pid: number };
    try {
      await execa(helper, ['--join', String(pid), '--', '/bin/sh', '-c', 'echo shared > /tmp/mark'], { env });
      const { stdout } = await execa(helper, ['--join', String(pid), '--', '/bin/sh', '-c', 'cat /tmp/mark; readlink /proc/self/ns/net; echo $PPID'], { env });
      const [mark, net, ppid] = stdout.split('\n');
      expect(mark).toBe('shared');
      expect(net).toBe(readlinkSync(`/proc/${pid}/ns/net`));
      expect(ppid).toBe('0'); // its parent (the joining helper) is outside the sandbox
    } finally {
      info.kill('SIGTERM');
      expect((await info).exitCode).toBe(0);
    }
    const gone = await execa(helper, ['--join', String(pid), '--', 'true'], { reject: false, env });
    expect(gone.exitCode).toBe(125);
  });
});
