// The escape and isolation matrix: every attempt from inside a sandbox must
// fail. CI runs it as root and as an unprivileged user. One row, one test;
// the README carries the same table.
import { once } from 'node:events';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/index.js';
import { cgroup2Mount } from '../../src/sandbox/cgroup.js';
import { NODE, ROOT, tempDir } from './support.js';

const sh = (script: string, options: Parameters<typeof run>[2] = {}) => run('/bin/sh', ['-c', script], options);
// A delegated cgroup v2 parent: CI's unprivileged run has one; as root, the cgroup2 root itself.
const cgroupParent = process.env.SANDBOX_RUN_CGROUP ?? (process.getuid!() === 0 ? cgroup2Mount() : undefined);

describe('escape matrix', () => {
  let project: ReturnType<typeof tempDir>;
  let home: ReturnType<typeof tempDir>;
  const savedHome = process.env.HOME;
  beforeAll(() => {
    project = tempDir();
    home = tempDir('sandbox-run-fake-home-');
    mkdirSync(join(home.path, '.ssh'));
    writeFileSync(join(home.path, '.ssh/id_ed25519'), 'PRIVATE KEY');
    mkdirSync(join(home.path, '.aws'));
    writeFileSync(join(home.path, '.aws/credentials'), 'aws_secret_access_key=x');
    writeFileSync(join(home.path, '.npmrc'), '//registry.npmjs.org/:_authToken=npm_x');
    process.env.HOME = home.path;
  });
  afterAll(() => {
    process.env.HOME = savedHome;
    project.remove();
    home.remove();
  });

  it('cannot write on the host except to declared outputs', async () => {
    const out = join(project.path, 'out');
    mkdirSync(out);
    const targets = ['/escape', '/etc/escape', '/usr/escape', '/var/tmp/escape', `${home.path}/escape`, `${project.path}/escape`];
    const script = `${targets.map((t) => `echo x > ${t} 2>/dev/null;`).join(' ')} echo kept > ${out}/result`;
    await sh(script, { cwd: project.path, binds: [{ source: out }] });
    for (const target of targets) expect(existsSync(target), target).toBe(false);
    expect(readFileSync(join(out, 'result'), 'utf8')).toBe('kept\n');
  });

  it('cannot read masked credentials', async () => {
    // The home directory is the working directory here, so the sandbox sees it (copy-on-write).
    const { stdout } = await sh('cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.npmrc 2>/dev/null; find ~/.ssh ~/.aws -type f | wc -l', { cwd: home.path });
    expect(stdout).toBe('0');
    const allowed = await sh('cat ~/.npmrc', { cwd: home.path, allowHome: ['.npmrc'] });
    expect(allowed.stdout).toContain('_authToken');
  });

  it('cannot see or signal host processes', async () => {
    const { stdout } = await sh(`kill -0 ${process.pid} 2>/dev/null && echo signalled; test -e /proc/${process.pid} && echo visible; ls /proc | grep -c '^[0-9]'`);
    expect(stdout.split('\n')).toEqual([expect.stringMatching(/^[1-4]$/)]);
  });

  it('cannot reach host loopback services', async () => {
    const server = createServer((socket) => socket.end('host')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as { port: number }).port;
      const { stdout } = await run(NODE, [join(ROOT, 'test/fixtures/connect.cjs'), String(port)]);
      expect(stdout).toBe('ECONNREFUSED');
    } finally {
      server.close();
    }
  });

  it('cannot gain privileges through setuid binaries or file capabilities', async () => {
    const { stdout } = await sh('grep NoNewPrivs /proc/self/status; su -c true root </dev/null >/dev/null 2>&1 && echo su-worked; grep CapEff /proc/self/status');
    expect(stdout.split('\n')).toEqual([expect.stringMatching(/^NoNewPrivs:\s+1$/), expect.stringMatching(/^CapEff:\s+0+$/)]);
  });

  it('cannot create device nodes that reach host devices', async () => {
    const { stdout } = await sh('mknod /tmp/disk b 254 0 2>/dev/null && echo created; unshare -Ur mknod /tmp/disk2 b 254 0 2>/dev/null && echo created-nested; ls /tmp/disk /tmp/disk2 2>/dev/null | wc -l');
    expect(stdout).toBe('0');
  });

  it('cannot mount over read-only paths so that the host sees it', async () => {
    const { stdout } = await sh('mount -t tmpfs none /etc 2>/dev/null && echo mounted; unshare -Urm sh -c "mount -t tmpfs none /etc && touch /etc/escape-nested" 2>/dev/null; echo done');
    expect(stdout).toBe('done');
    expect(existsSync('/etc/escape-nested')).toBe(false);
  });

  it('cannot escape through .. or symlinks in mount targets', async () => {
    await expect(run('true', [], { tmpfs: ['/tmp/../etc'] })).rejects.toThrow(/must not contain/);
    const link = join(project.path, 'link-to-etc');
    const { symlinkSync } = await import('node:fs');
    symlinkSync('/etc', link);
    // The symlink is resolved inside the sandbox root: the tmpfs lands on the sandbox's /etc view, never the host's.
    const { stdout } = await sh('ls -A /etc | wc -l', { binds: [{ source: project.path, target: '/tmp/p' }], tmpfs: ['/tmp/p/link-to-etc'] });
    expect(Number(stdout)).toBe(0);
    expect(readdirSync('/etc').length).toBeGreaterThan(0);
  });

  it('cannot write to /proc/sys, /sys or /proc/sysrq-trigger', async () => {
    const { stdout } = await sh(
      'v=$(cat /proc/sys/vm/swappiness); echo $v > /proc/sys/vm/swappiness 2>/dev/null && echo sysctl; echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq; echo x > /sys/kernel/uevent_helper 2>/dev/null && echo sys; echo done',
    );
    expect(stdout).toBe('done');
  });

  it('cannot use file descriptors it was not given', async () => {
    const fd = openSync(project.path, 'r');
    try {
      const { stdout } = await run('/bin/sh', ['-c', 'ls /proc/self/fd'], { stdio: ['ignore', 'pipe', 'pipe', fd] as never });
      expect(stdout.split('\n').sort()).toEqual(['0', '1', '2', '3']); // 3 is ls's own directory fd
      const kept = await run('/bin/sh', ['-c', 'ls /proc/self/fd'], { stdio: ['ignore', 'pipe', 'pipe', fd] as never, keepFds: [3] });
      expect(kept.stdout.split('\n')).toContain('3');
    } finally {
      closeSync(fd);
    }
  });

  // The one way to the cgroup tree from inside: a nested user namespace, a
  // cgroup namespace of its own and a cgroup2 mount. Its root is the
  // sandbox's leaf; the limits sit one level up, out of sight.
  it.skipIf(!cgroupParent)('cannot raise its own limits or leave its cgroup', async () => {
    const script = [
      'ls -A /sys/fs/cgroup', // the fresh /sys shows no cgroup tree at all
      'echo --',
      // (util-linux applies -C before -r's map when given together: two steps.)
      `unshare -Urm sh -c 'unshare -C sh -c "mkdir /tmp/cg && mount -t cgroup2 none /tmp/cg && ls /tmp/cg"'`,
    ].join('; ');
    const { stdout } = await sh(script, { workdir: 'none', cgroupParent: cgroupParent!, pids: 64 });
    const [host, mounted] = stdout.split('--\n') as [string, string];
    expect(host).toBe('');
    const files = mounted.split('\n');
    expect(files).toContain('cgroup.procs'); // the mount worked: its root is the sandbox's leaf, nothing above
    expect(files.filter((name) => /\.(max|high|low|min|weight)$/.test(name))).toEqual([]);
  });

  it('cannot ptrace or read the memory of anything outside, not even its own init', async () => {
    const { stdout } = await sh('cat /proc/1/environ >/dev/null 2>&1 && echo read-init; cat /proc/1/mem >/dev/null 2>&1 && echo mem; echo done');
    expect(stdout).toBe('done');
  });
});
