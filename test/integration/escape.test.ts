// The escape and isolation matrix: every attempt from inside a sandbox must
// fail. CI runs it as root and as an unprivileged user. One row, one test;
// the README carries the same table.
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/index.js';
import { cgroup2Mount } from '../../src/sandbox/cgroup.js';
import { defaultSizes } from '../../src/sandbox/size-budget.js';
import { CLI, NODE, ROOT, tempDir } from './support.js';

const sh = (script: string, options: Parameters<typeof run>[2] = {}) => run('/bin/sh', ['-c', script], options);
// A delegated cgroup v2 parent: CI's unprivileged run has one; as root, the cgroup2 root itself.
const cgroupParent = process.env.SANDBOX_RUN_CGROUP ?? (process.getuid!() === 0 ? cgroup2Mount() : undefined);

/** A directory in the caller's real home: outside /tmp, so only the sandbox's own rules can hide it. */
function homeDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(userInfo().homedir, prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A unix socket server at `path` that answers 'host'. */
async function socketServer(path: string): Promise<Server> {
  const server = createServer((socket) => socket.end('host')).listen(path);
  await once(server, 'listening');
  return server;
}

/** Node inside the sandbox connecting to a unix socket: what it heard, or the error code. */
const CONNECT_UNIX =
  "const s=require('net').connect(process.argv[1]);let d='';s.on('data',c=>d+=c);s.on('end',()=>console.log(d));s.on('error',e=>console.log(e.code))";

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
    for (const file of ['.pgpass', '.vault-token', '.bash_history', '.my.cnf']) writeFileSync(join(home.path, file), 'secret');
    mkdirSync(join(home.path, '.config/git'), { recursive: true });
    writeFileSync(join(home.path, '.config/git/credentials'), 'https://u:secret@example.com');
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
    const more = await sh('cat ~/.pgpass ~/.vault-token ~/.bash_history ~/.my.cnf ~/.config/git/credentials 2>/dev/null | grep -c secret', { cwd: home.path });
    expect(more.stdout).toBe('0');
    const allowed = await sh('cat ~/.npmrc', { cwd: home.path, allowHome: ['.npmrc'] });
    expect(allowed.stdout).toContain('_authToken');
  });

  it('cannot see or signal host processes', async () => {
    const { stdout } = await sh(
      `kill -0 ${process.pid} 2>/dev/null && echo signalled; test -e /proc/${process.pid} && echo visible; ls /proc | grep -c '^[0-9]'`,
    );
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
    const { stdout } = await sh(
      'grep NoNewPrivs /proc/self/status; su -c true root </dev/null >/dev/null 2>&1 && echo su-worked; grep CapEff /proc/self/status',
    );
    expect(stdout.split('\n')).toEqual([expect.stringMatching(/^NoNewPrivs:\s+1$/), expect.stringMatching(/^CapEff:\s+0+$/)]);
  });

  it('cannot create device nodes that reach host devices', async () => {
    const { stdout } = await sh(
      'mknod /tmp/disk b 254 0 2>/dev/null && echo created; ' +
        'unshare -Ur mknod /tmp/disk2 b 254 0 2>/dev/null && echo created-nested; ' +
        'ls /tmp/disk /tmp/disk2 2>/dev/null | wc -l',
    );
    expect(stdout).toBe('0');
  });

  it('cannot mount over read-only paths so that the host sees it', async () => {
    const { stdout } = await sh(
      'mount -t tmpfs none /etc 2>/dev/null && echo mounted; unshare -Urm sh -c "mount -t tmpfs none /etc && touch /etc/escape-nested" 2>/dev/null; echo done',
    );
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
      'v=$(cat /proc/sys/vm/swappiness); echo $v > /proc/sys/vm/swappiness 2>/dev/null && echo sysctl; ' +
        'echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq; ' +
        'echo x > /sys/kernel/uevent_helper 2>/dev/null && echo sys; echo done',
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
  it("cannot reach the host's runtime sockets: /run, $XDG_RUNTIME_DIR, the session bus and agents", async () => {
    const runtime = homeDir('.sandbox-run-test-xdg-');
    const server = await socketServer(join(runtime.path, 'bus'));
    const saved = {
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR,
      DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
      SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK,
    };
    Object.assign(process.env, {
      XDG_RUNTIME_DIR: runtime.path,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${runtime.path}/bus`,
      SSH_AUTH_SOCK: join(runtime.path, 'bus'),
    });
    try {
      expect(readdirSync('/run').length).toBeGreaterThan(0);
      const script =
        'find /run /var/run/ -mindepth 1 | wc -l; ' +
        'echo "${XDG_RUNTIME_DIR:-unset} ${DBUS_SESSION_BUS_ADDRESS:-unset} ${SSH_AUTH_SOCK:-unset}"; ' +
        `${NODE} -e "${CONNECT_UNIX}" ${runtime.path}/bus`;
      const { stdout } = await sh(script, { workdir: 'none' });
      expect(stdout.split('\n')).toEqual(['0', 'unset unset unset', 'ENOENT']);
      // Named, it is passed; bound, it is reachable.
      const declared = await sh(`echo $SSH_AUTH_SOCK; ${NODE} -e "${CONNECT_UNIX}" $SSH_AUTH_SOCK`, {
        workdir: 'none',
        passEnv: ['SSH_AUTH_SOCK'],
        binds: [{ source: runtime.path }],
      });
      expect(declared.stdout.split('\n')).toEqual([join(runtime.path, 'bus'), 'host']);
    } finally {
      for (const [name, value] of Object.entries(saved))
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      server.close();
      runtime.remove();
    }
  });

  it("cannot reach sibling sandboxes' sockets or anything of sandbox-run's home; its own bound socket dir works", async () => {
    const store = homeDir('.sandbox-run-test-home-');
    const savedHome = process.env.SANDBOX_RUN_HOME;
    process.env.SANDBOX_RUN_HOME = store.path;
    mkdirSync(join(store.path, 'sockets/sibling'), { recursive: true });
    mkdirSync(join(store.path, 'sockets/mine'), { recursive: true });
    mkdirSync(join(store.path, 'layers/sha256-x'), { recursive: true });
    const sibling = await socketServer(join(store.path, 'sockets/sibling/.s.PGSQL.5432'));
    const mine = await socketServer(join(store.path, 'sockets/mine/.s.PGSQL.5432'));
    try {
      const script =
        `ls -A ${store.path} | wc -l; ` +
        `${NODE} -e "${CONNECT_UNIX}" ${store.path}/sockets/sibling/.s.PGSQL.5432; ` +
        `${NODE} -e "${CONNECT_UNIX}" ${store.path}/sockets/mine/.s.PGSQL.5432`;
      const { stdout } = await sh(script, { workdir: 'none', binds: [{ source: join(store.path, 'sockets/mine') }] });
      expect(stdout.split('\n')).toEqual(['1', 'ENOENT', 'host']); // only the bound 'sockets' path exists inside
    } finally {
      if (savedHome === undefined) delete process.env.SANDBOX_RUN_HOME;
      else process.env.SANDBOX_RUN_HOME = savedHome;
      sibling.close();
      mine.close();
      store.remove();
    }
  });

  it('gives uid 0 no capability: masks and the read-only host stay, through the API and the CLI', async () => {
    const script = [
      'id -u',
      'grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status | tr -d "\\t"',
      'umount ~/.ssh 2>/dev/null && echo unmounted',
      'mount -o remount,rw / 2>/dev/null && echo remounted',
      'unshare -Urm sh -c "umount $HOME/.ssh" 2>/dev/null && echo unmounted-nested',
      'cat ~/.ssh/id_ed25519 2>/dev/null',
      `touch ${home.path}/escape-uid0 2>/dev/null && echo wrote`,
    ].join('; ');
    const { stdout } = await sh(script, { uid: 0, gid: 0, workdir: 'none' });
    expect(stdout.split('\n')).toEqual([
      '0',
      'CapInh:0000000000000000',
      'CapPrm:0000000000000000',
      'CapEff:0000000000000000',
      'CapBnd:0000000000000000',
      'CapAmb:0000000000000000',
    ]);
    expect(existsSync(join(home.path, 'escape-uid0'))).toBe(false);
    // --uid is the sandbox's, never execa's (which would setuid the helper, EPERM for a non-root caller).
    const cli = await execa(NODE, [CLI, '--uid', '0', '--workdir', 'none', '--', 'sh', '-c', 'id -u; grep CapEff /proc/self/status'], {
      reject: false,
      stdin: 'ignore',
    });
    expect([cli.exitCode, cli.stdout]).toEqual([0, '0\nCapEff:\t0000000000000000']);
  });

  it('gets default tmpfs sizes that share half the memory between the sandboxes running at once', async () => {
    const page = (bytes: number) => String(Math.ceil(bytes / 4096) * 4096);
    const df = async (concurrency: number) =>
      (await run('df', ['-B1', '--output=size', '/tmp', '/dev/shm', '/run', ROOT], { concurrency, cwd: ROOT })).stdout
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    for (const concurrency of [1, 8]) {
      const { tmpfs, upper } = defaultSizes(concurrency);
      expect(await df(concurrency)).toEqual([page(tmpfs), page(tmpfs), page(tmpfs), page(upper)]);
    }
  });

  it('drops inherited credentials and says which, once, on stderr', async () => {
    const env = { ...process.env, DATABASE_URL: 'postgres://app:s3cret@db/app', DEPLOY_KEY: 'k', PLAIN: 'p' };
    const script = 'echo "${DATABASE_URL:-unset} ${DEPLOY_KEY:-unset} ${PLAIN:-unset}"';
    const dropped = await execa(NODE, [CLI, '--workdir', 'none', '--', 'sh', '-c', script], { env, extendEnv: false, reject: false, stdin: 'ignore' });
    expect(dropped.stdout).toBe('unset unset p');
    expect(dropped.stderr.match(/not passed into the sandbox/g)).toHaveLength(1);
    expect(dropped.stderr).toMatch(/: DATABASE_URL DEPLOY_KEY; pass one with --pass-env NAME/);
    const passed = await execa(NODE, [CLI, '--workdir', 'none', '--pass-env', 'DATABASE_URL', '--', 'sh', '-c', script], {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    expect(passed.stdout).toBe('postgres://app:s3cret@db/app unset p');
  });
});
