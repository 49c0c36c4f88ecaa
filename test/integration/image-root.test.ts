// An image as the root (--image / image) and images mounted for processes
// with their own root (images + root), against the real kernel, overlayfs
// and the host's PostgreSQL 15 binaries packed into an image. Images are
// built from host files by image-root-fixtures.ts, never downloaded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError } from '../../src/errors.js';
import { LayerStore } from '../../src/layers/store.js';
import { createSandbox } from '../../src/sandbox/create.js';
import { normalizeOptions } from '../../src/sandbox/options.js';
import { run } from '../../src/sandbox/run.js';
import { ociLayout, tarOf } from './image-fixtures.js';
import { BUSYBOX_CONFIG, importTestImages, passwdEntry } from './image-root-fixtures.js';
import { CLI, eventually, INSIDE_UID, mountCount, NODE, processesWith, tempDir, treeDigest, useTempHome } from './support.js';

const home = useTempHome();
const work = tempDir('sandbox-run-image-root-');
afterAll(() => work.remove());

let store: LayerStore;
let images: { busybox: string; postgres: string };
const sh = (script: string, options: Parameters<typeof run>[2] = {}) => run('/bin/sh', ['-c', script], { image: images.busybox, ...options });

beforeAll(async () => {
  store = new LayerStore();
  images = await importTestImages(store, work.path);
}, 120_000);

describe('--image: an image as the root', () => {
  it("shows the image's files as /, and nothing of the host's", async () => {
    const result = await sh('cat /etc/image-marker; ls /; test -e /usr/bin/node && echo HOST-NODE; test -e /etc/hostname && echo HOST-HOSTNAME; true');
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('busybox image');
    expect(result.stdout).not.toMatch(/HOST-NODE|HOST-HOSTNAME/);
    // The host has both, so their absence is the image's doing.
    expect(execFileSync('sh', ['-c', 'test -e /etc/hostname && test -e /usr/bin/env && echo yes'], { encoding: 'utf8' }).trim()).toBe('yes');
  });

  it('throws writes away and leaves the image layer as it was', async () => {
    const [top] = await store.lowerDirs(images.busybox);
    const before = treeDigest(top!);
    const write = await sh('echo changed > /etc/image-marker && echo new > /bin/new-file && rm /bin/ls && cat /etc/image-marker');
    expect(write.stdout.trim()).toBe('changed');
    const again = await sh('cat /etc/image-marker; test -e /bin/new-file && echo STILL-THERE; test -e /bin/ls && echo ls-back');
    expect(again.stdout).toBe('busybox image\nls-back');
    expect(treeDigest(top!)).toBe(before);
  });

  it("applies the image's Env under the caller's and its WorkingDir where no working directory is mounted", async () => {
    const env = await sh('echo "$IMAGE_VAR $SHARED $PATH"; pwd', { workdir: 'none', env: { SHARED: 'mine' } });
    expect(env.stdout).toBe(`from-image mine /bin\n${BUSYBOX_CONFIG.WorkingDir}`);
    // Inherited variables sit below the image's: the host's PATH never wins over it.
    process.env.IMAGE_VAR = 'inherited';
    try {
      expect((await sh('echo $IMAGE_VAR', { workdir: 'none' })).stdout).toBe('from-image');
    } finally {
      delete process.env.IMAGE_VAR;
    }
  });

  it('mounts the working directory at its own path, copy-on-write, and starts there', async () => {
    const project = join(work.path, 'project');
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'schema.sql'), 'select 1;\n');
    const result = await sh('pwd; cat schema.sql; echo out > build.log; cat build.log', { cwd: project });
    expect(result.stdout).toBe(`${project}\nselect 1;\nout`);
    expect(execFileSync('ls', [project], { encoding: 'utf8' })).toBe('schema.sql\n');
  });

  it('knows the caller: the inside uid has a passwd and group entry and a home that exists and is writable', async () => {
    const result = await sh('id -un; id -gn; echo $HOME; touch $HOME/x && echo home-ok; cat /etc/passwd');
    const [name, group, homeDir, ok, ...passwd] = result.stdout.trim().split('\n');
    const entry = passwdEntry(passwd.join('\n'), INSIDE_UID);
    expect(entry, result.stdout).toBeDefined();
    expect(name).toBe(entry![0]);
    expect(group).not.toMatch(/^\d+$/);
    expect(homeDir).toBe(entry![5]);
    expect(ok).toBe('home-ok');
    // The image's own entries stay.
    expect(passwd.join('\n')).toContain('root:x:0:0:root:/root:/bin/sh');
  });

  it("keeps the image's own entry for the inside uid, and makes no directory from a name that is not plain", async () => {
    const passwd = `root:x:0:0:root:/root:/bin/sh\n../../../image-root-escape:x:${INSIDE_UID}:${INSIDE_UID}::/nonexistent:/bin/sh\n`;
    const layer = tarOf([
      { path: './', type: 'Directory', mode: 0o755 },
      { path: './etc/', type: 'Directory', mode: 0o755 },
      { path: './etc/passwd', data: passwd },
    ]);
    const ref = 'odd-passwd:1';
    await store.importImage(ociLayout(join(work.path, 'odd-oci'), [{ layers: [layer], compression: 'none' }], ref), { name: ref });
    const { lowers } = normalizeOptions({ image: ref }).imageRoot!;
    const generated = readFileSync(join(lowers[0]!, 'etc/passwd'), 'utf8');
    expect(passwdEntry(generated, INSIDE_UID)).toEqual([
      '../../../image-root-escape',
      'x',
      String(INSIDE_UID),
      String(INSIDE_UID),
      '',
      '/home/sandbox',
      '/bin/sh',
    ]);
    expect(readdirSync(join(lowers[0]!, 'home'))).toEqual(['sandbox']);
    expect(existsSync(join(home.path, 'image-root-escape'))).toBe(false);
  });

  it("runs the image's Entrypoint and Cmd when the CLI is given no command, as docker run does", async () => {
    const cli = await execa(NODE, [CLI, '--image', images.busybox], { reject: false, env: { SANDBOX_RUN_HOME: home.path } });
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(cli.stdout.trim()).toBe('Cmd of the image: from-image');
  });

  it('leases the image while this process uses it: sandbox-run rm untags it but deletes nothing', async () => {
    const tree = join(work.path, 'lease-image');
    mkdirSync(tree);
    execFileSync('cp', ['-a', join((await store.require(images.busybox)).path, 'bin'), tree]);
    const layer = await store.snapshot(tree, { name: 'lease-test:1' });
    expect((await run('/bin/sh', ['-c', 'echo used'], { image: 'lease-test:1', env: { PATH: '/bin' } })).stdout).toBe('used');
    const rm = await execa(NODE, [CLI, 'rm', 'lease-test:1'], { reject: false, env: { SANDBOX_RUN_HOME: home.path } });
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(rm.stdout).not.toMatch(/deleted:/);
    expect(existsSync(join(layer.path, 'bin', 'busybox'))).toBe(true);
  });

  it('names sandbox-run pull and import when the image is not in the store, from the API and the CLI', async () => {
    const error = await run('true', [], { image: 'no-such-image:1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxError);
    expect((error as Error).message).toMatch(/^no image 'no-such-image:1' in the layer store .*sandbox-run pull no-such-image:1.*sandbox-run import/);
    expect((error as Error).message).not.toContain('\n');
    const before = mountCount();
    const cli = await execa(NODE, [CLI, '--image', 'no-such-image:1', '--', 'true'], { reject: false, env: { SANDBOX_RUN_HOME: home.path } });
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(/sandbox-run pull no-such-image:1/);
    expect(mountCount()).toBe(before);
  });

  it("gives a command on a terminal its own pty from the sandbox's devpts", async () => {
    const script = `${NODE} ${CLI} --image ${images.busybox} -- sh -c 'tty; test -c /dev/pts/ptmx && echo devpts'`;
    const result = await execa('script', ['-qec', script, '/dev/null'], { reject: false, env: { SANDBOX_RUN_HOME: home.path }, stdin: 'ignore' });
    expect(result.exitCode).toBe(0);
    // (script's own terminal may echo a stray ^@ first.)
    expect(result.stdout.replace(/\r/g, '')).toMatch(/(^|\^@)\/dev\/pts\/\d+\ndevpts$/);
  });

  it("with the host network, binds the host's /etc/resolv.conf and /etc/hosts over the image's", async () => {
    const result = await sh('cat /etc/resolv.conf; echo ---; cat /etc/hosts', { network: 'host' });
    const host = `${readFileSync('/etc/resolv.conf', 'utf8')}---\n${readFileSync('/etc/hosts', 'utf8')}`;
    expect(result.stdout).toBe(host.trimEnd());
    expect((await sh('cat /etc/hosts')).stdout).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
  });

  it('refuses an image whose /tmp is a link (it would resolve against the host root while the root is built)', async () => {
    const layer = tarOf([
      { path: './', type: 'Directory', mode: 0o755 },
      { path: './tmp', type: 'SymbolicLink', linkpath: '/oldroot/etc' },
    ]);
    await store.importImage(ociLayout(join(work.path, 'link-oci'), [{ layers: [layer], compression: 'none' }], 'linked:1'), { name: 'linked:1' });
    const error = await run('true', [], { image: 'linked:1' }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^image root: \/tmp is not a directory \(a symlink\?\)/);
  });

  it('cannot reach the host root: no /oldroot, no host files through /proc, no capability', async () => {
    const script = [
      'test -e /oldroot && echo OLDROOT',
      'test -e /proc/1/root/usr/bin/node && echo PROC1-HOST',
      'test -e /proc/self/root/etc/hostname && echo SELF-HOST',
      'grep CapEff /proc/self/status',
      // Every mount is the image root, ours, or below them: none shows the host's root directory.
      "grep -c ' / / ' /proc/self/mountinfo",
      "grep ' / / ' /proc/self/mountinfo | grep -c overlay",
    ].join('; ');
    const result = await sh(script);
    expect(result.stdout).not.toMatch(/OLDROOT|PROC1-HOST|SELF-HOST/);
    expect(result.stdout).toMatch(/CapEff:\s+0+\n/);
    expect(result.stdout).toMatch(/\n1\n1$/);
  });

  it("keeps the root's writable layer on disk where tmpfs cannot hold it (before Linux 6.6), and refuses the copy fallback", async () => {
    process.env.SANDBOX_RUN_OVERLAY = 'disk';
    try {
      const result = await sh('echo on-disk > /etc/image-marker && cat /etc/image-marker && rm /bin/ls && test ! -e /bin/ls && echo removed');
      expect(result.stdout).toBe('on-disk\nremoved');
    } finally {
      delete process.env.SANDBOX_RUN_OVERLAY;
    }
    const uppers = join(home.path, 'uppers');
    expect(existsSync(uppers) ? readdirSync(uppers).filter((name) => /^\d+-/.test(name)) : []).toEqual([]);
    process.env.SANDBOX_RUN_OVERLAY = 'copy';
    try {
      await expect(sh('true')).rejects.toThrow(
        /^--image needs a copy-on-write overlay, and none works here \(SANDBOX_RUN_OVERLAY=copy\); run 'sandbox-run doctor'$/,
      );
    } finally {
      delete process.env.SANDBOX_RUN_OVERLAY;
    }
  });

  it('runs initdb, postgres and psql from the image as an unprivileged caller', async () => {
    const script = [
      'initdb -D /tmp/db -A trust -U postgres >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }',
      'pg_ctl -D /tmp/db -w -l /tmp/pg.log -o "-k /tmp -c listen_addresses=\'\'" start >/dev/null || { cat /tmp/pg.log; exit 1; }',
      'psql -h /tmp -U postgres -Atc "select 40 + 2, current_user"',
      'pg_ctl -D /tmp/db -m fast -w stop >/dev/null',
    ].join(' && ');
    const result = await run('/bin/sh', ['-c', script], { image: images.postgres, workdir: 'none' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('42|postgres');
    expect(result.exitCode).toBe(0);
  });
});

describe('a live sandbox on an image root', () => {
  it("joins services and commands into the image root, with the image's Env", async () => {
    await using sb = await createSandbox({
      image: images.postgres,
      workdir: 'none',
      services: [
        {
          name: 'pg',
          command: ['sh', '-c', 'initdb -D /tmp/pgdata -A trust -U postgres >/dev/null && exec postgres -D /tmp/pgdata -k /tmp -c listen_addresses=127.0.0.1'],
          ready: { command: ['pg_isready', '-h', '127.0.0.1', '-q'] },
          startTimeoutMs: 60_000,
        },
      ],
    });
    const result = await sb.exec('sh', [
      '-c',
      'psql -h 127.0.0.1 -U postgres -Atc "select 7 * 6"; pwd; cat /etc/image-marker; test -e /usr/bin/env || echo no-host',
    ]);
    expect(result.stdout).toBe('42\n/var/lib/postgresql\npostgres image\nno-host');
  });
});

describe('images mounted for processes with their own root', () => {
  it("runs a process on an image inside a host-root sandbox, with the image's Env, WorkingDir and a passwd entry", async () => {
    await using sb = await createSandbox({ images: [{ ref: images.busybox, at: '/run/images/bb' }] });
    const inside = await sb.exec('/bin/sh', ['-c', 'cat /etc/image-marker; pwd; echo $IMAGE_VAR; id -un; test -e /usr/bin/node || echo no-node'], {
      root: '/run/images/bb',
    });
    expect(inside.stderr).toBe('');
    const [marker, pwd, variable, user, node] = inside.stdout.trim().split('\n');
    expect([marker, pwd, variable, node]).toEqual(['busybox image', BUSYBOX_CONFIG.WorkingDir, 'from-image', 'no-node']);
    expect(user).not.toMatch(/^\d+$/);
    // The sandbox itself still runs on the host's root, and sees the image at its path.
    const outside = await sb.exec('/bin/sh', ['-c', 'test -e /usr/bin/env && cat /run/images/bb/etc/image-marker']);
    expect(outside.stdout).toBe('busybox image');
    await expect(sb.exec('true', [], { root: '/run/images/other' })).rejects.toThrow(/root '\/run\/images\/other': not an image mounted in this sandbox/);
  });

  it("serves PostgreSQL from an image as a service on the sandbox's own localhost", async () => {
    await using sb = await createSandbox({
      images: [{ ref: images.postgres, at: '/run/images/pg' }],
      services: [
        {
          name: 'pg',
          root: '/run/images/pg',
          command: ['sh', '-c', 'initdb -D /tmp/pgdata -A trust -U postgres >/dev/null && exec postgres -D /tmp/pgdata -k /tmp -c listen_addresses=127.0.0.1'],
          ready: { tcp: 5432 },
          startTimeoutMs: 60_000,
        },
      ],
    });
    // psql from the image, over TCP on localhost, in a process of its own root.
    const fromImage = await sb.exec('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-Atc', 'select 6 * 7'], { root: '/run/images/pg' });
    expect(fromImage.stdout).toBe('42');
    // The sandbox's other processes (host root) reach it on their localhost, and see its socket in the shared /tmp.
    const fromHostRoot = await sb.exec('/bin/sh', ['-c', 'test -S /tmp/.s.PGSQL.5432 && echo socket; cat /proc/net/tcp | grep -c ":1538 00000000:0000 0A"']);
    expect(fromHostRoot.stdout).toBe('socket\n1');
    expect(processesWith('/tmp/pgdata').length).toBeGreaterThan(0);
  });

  it("refuses an image whose /dev is a link: the sandbox's /dev would land on another of its directories", async () => {
    const layer = tarOf([
      { path: './', type: 'Directory', mode: 0o755 },
      { path: './dev', type: 'SymbolicLink', linkpath: '/etc' },
    ]);
    await store.importImage(ociLayout(join(work.path, 'devlink-oci'), [{ layers: [layer], compression: 'none' }], 'devlink:1'), { name: 'devlink:1' });
    await expect(createSandbox({ images: [{ ref: 'devlink:1', at: '/run/images/dl' }] })).rejects.toThrow(
      /bind-inside target '\/run\/images\/dl\/dev': a symlink on the way/,
    );
  });

  it('leaves no process behind once the sandbox is disposed', async () => {
    const sb = await createSandbox({ images: [{ ref: images.busybox, at: '/run/images/bb' }] });
    const sleeper = sb.spawn('/bin/sh', ['-c', 'sleep 1000; : image-root-marker'], { root: '/run/images/bb' });
    await eventually(() => processesWith('image-root-marker').length > 0, 5000, 'the process in the image root');
    await sb.dispose();
    await sleeper;
    expect(processesWith('image-root-marker')).toEqual([]);
  });
});
