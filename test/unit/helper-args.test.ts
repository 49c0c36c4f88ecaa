import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { optionsFromFlags } from '../../src/cli/sandbox-flags.js';
import { sandboxEnv } from '../../src/sandbox/env.js';
import { helperArgs, joinArgs } from '../../src/sandbox/helper-argv.js';
import { workdirMountPoint } from '../../src/sandbox/mounts.js';
import { normalizeOptions, parseSize } from '../../src/sandbox/options.js';
import { inheritedEnv, masksFor } from '../../src/sandbox/secrets.js';
import { defaultSizes } from '../../src/sandbox/size-budget.js';
import { tempDir } from '../integration/support.js';

// A working directory outside /tmp, wherever the repository was checked out.
process.chdir('/usr');
const cwd = '/usr';
// Credential masks depend on what the home directory holds: start from an empty one.
const home = tempDir('sandbox-run-home-');
process.env.HOME = home.path;
delete process.env.XDG_RUNTIME_DIR;
delete process.env.SANDBOX_RUN_HOME; // under HOME, i.e. under /tmp: hidden by the fresh /tmp, no mask needed
afterAll(() => home.remove());
// The default sizes: this host's memory budget split between as many sandboxes as cores.
const sizes = defaultSizes();
const sizeArgs = ['--tmpfs-size', String(sizes.tmpfs), '--upper-size', String(sizes.upper)];
// Credentials of the passwd entry's home (not the fake $HOME) are masked too: whatever this host has there.
const maskArgs = masksFor([], []).flatMap((path) => ['--mask', path]);

describe('helperArgs', () => {
  it('mounts the working directory copy-on-write by default and starts there', () => {
    expect(helperArgs(normalizeOptions({}), ['ls', '-l'])).toEqual([
      '--hostname',
      'sandbox',
      ...sizeArgs,
      '--overlay',
      cwd,
      cwd,
      ...maskArgs,
      '--chdir',
      cwd,
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
      '-l',
    ]);
  });

  it('turns every option into its helper flag, in mount order', () => {
    const options = normalizeOptions({
      workdir: 'rw',
      network: 'host',
      uid: 1000,
      gid: 1000,
      hostname: 'box',
      tmpfsSize: '64m',
      upperSize: 1024,
      overlays: [
        { lower: ['/usr', '/etc'], target: '/data' },
        { lower: '/usr', target: '/kept', upper: { upper: '/tmp', work: '/var' } },
      ],
      binds: [
        { source: '/etc', readonly: true },
        { source: '/tmp', target: '/out' },
      ],
      tmpfs: ['/scratch/'],
      rlimits: { nofile: 64, core: [0, 'unlimited'] },
      keepFds: [5],
      pids: 128,
    });
    expect(helperArgs(options, ['true'], { infoFd: 4, cgroup: '/sys/fs/cgroup/box' })).toEqual([
      '--uid',
      '1000',
      '--gid',
      '1000',
      '--share-net',
      '--hostname',
      'box',
      '--tmpfs-size',
      String(64 * 1024 * 1024),
      '--upper-size',
      '1024',
      '--bind',
      cwd,
      cwd,
      '--overlay',
      '/usr:/etc',
      '/data',
      '--overlay-rw',
      '/tmp',
      '/var',
      '/usr',
      '/kept',
      '--ro-bind',
      '/etc',
      '/etc',
      '--bind',
      '/tmp',
      '/out',
      '--tmpfs',
      '/scratch',
      ...maskArgs,
      '--info-fd',
      '4',
      '--cgroup',
      '/sys/fs/cgroup/box',
      '--chdir',
      cwd,
      '--rlimit',
      'core',
      '0',
      'unlimited',
      '--rlimit',
      'nproc',
      '128',
      '128',
      '--rlimit',
      'nofile',
      '64',
      '64',
      '--keep-fd',
      '5',
      '--',
      'true',
    ]);
  });

  it('mounts the top-level directory under /tmp for a working directory there', () => {
    expect(workdirMountPoint('/tmp/checkout/packages/app')).toBe('/tmp/checkout');
    expect(workdirMountPoint('/dev/shm/x/y')).toBe('/dev/shm/x');
    expect(workdirMountPoint('/home/me/project')).toBe('/home/me/project');
    expect(workdirMountPoint('/tmpfoo/x')).toBe('/tmpfoo/x');
  });

  it('starts an idle sandbox when there is no command', () => {
    expect(helperArgs(normalizeOptions({ workdir: 'none', pids: 'unlimited' }), null)).toEqual([
      '--hostname',
      'sandbox',
      ...sizeArgs,
      ...maskArgs,
      '--chdir',
      cwd,
      '--rlimit',
      'core',
      '0',
      '0',
      '--',
    ]);
  });

  it('joins a live sandbox by pid, in its cgroup', () => {
    expect(joinArgs(42, { cwd: '/w' }, ['psql'])).toEqual(['--join', '42', '--chdir', '/w', '--', 'psql']);
    expect(joinArgs(42, { cwd: '/w' }, ['psql'], { cgroup: '/sys/fs/cgroup/a' })).toEqual([
      '--join',
      '42',
      '--cgroup',
      '/sys/fs/cgroup/a',
      '--chdir',
      '/w',
      '--',
      'psql',
    ]);
  });
});

describe('resource limits', () => {
  const nproc = (options: Parameters<typeof normalizeOptions>[0]) =>
    normalizeOptions({ workdir: 'none', ...options }).rlimits.find(([name]) => name === 'nproc');

  it('caps processes per sandbox by default, through RLIMIT_NPROC when no cgroup is delegated', () => {
    delete process.env.SANDBOX_RUN_CGROUP;
    expect(nproc({})).toEqual(['nproc', '4096', '4096']);
    expect(nproc({ pids: 100 })).toEqual(['nproc', '100', '100']);
    expect(nproc({ pids: 'unlimited' })).toBeUndefined();
    expect(nproc({ pids: 100, rlimits: { nproc: 7 } })).toEqual(['nproc', '7', '7']);
    expect(normalizeOptions({ workdir: 'none' }).limits).toEqual({});
  });

  it('hands the limits to a cgroup under the delegated parent', () => {
    const options = normalizeOptions({ workdir: 'none', memory: '1g', cpus: 1.5, cgroupParent: '/sys/fs/cgroup/me' });
    expect(options.cgroupParent).toBe('/sys/fs/cgroup/me');
    expect(options.limits).toEqual({ memory: 2 ** 30, pids: 4096, cpus: 1.5, pidsIsDefault: true });
    expect(normalizeOptions({ workdir: 'none', cgroupParent: 'self', pids: 9 }).limits).toEqual({ pids: 9 });
  });

  it('refuses malformed limits with one line', () => {
    expect(() => normalizeOptions({ pids: 0 })).toThrow("pids: expected a positive number of processes or 'unlimited', got '0'");
    expect(() => normalizeOptions({ cpus: -1 })).toThrow("cpus: expected a number of cores such as 1.5, got '-1'");
    expect(() => normalizeOptions({ memory: 'lots' })).toThrow("memory: expected a size such as 512m or 2g, got 'lots'");
    expect(() => normalizeOptions({ cgroupParent: 'relative/dir' })).toThrow(
      "cgroup parent 'relative/dir': expected an absolute cgroup v2 directory or 'self'",
    );
    expect(() => optionsFromFlags({ pids: '12x' })).toThrow("--pids '12x': expected a number of processes such as 256, or unlimited");
    expect(() => optionsFromFlags({ cpus: 'two' })).toThrow("--cpus 'two': expected a number of cores such as 1.5");
  });

  it('maps the limit flags', () => {
    expect(optionsFromFlags({ memory: '512m', pids: 'unlimited', cpus: '0.5', cgroupParent: 'self' })).toMatchObject({
      memory: '512m',
      pids: 'unlimited',
      cpus: 0.5,
      cgroupParent: 'self',
    });
  });
});

describe('normalizeOptions', () => {
  it.each([
    [{ overlays: [{ lower: '/nonexistent', target: '/x' }] }, /overlay source '\/nonexistent' does not exist/],
    [{ overlays: [{ lower: '/etc/passwd', target: '/x' }] }, /is not a directory/],
    [{ overlays: [{ lower: [], target: '/x' }] }, /at least one lower/],
    [{ binds: [{ source: '/etc', target: 'etc' }] }, /must be an absolute path/],
    [{ tmpfs: ['/a/../b'] }, /must not contain/],
    [{ workdir: 'copy' as never }, /workdir: expected cow, ro, rw or none/],
    [{ network: 'bridge' as never }, /network: expected none or host/],
    [{ rlimits: { files: 3 } as never }, /rlimit 'files'/],
    [{ rlimits: { nofile: -1 } }, /non-negative integer/],
    [{ uid: -5 }, /uid: expected an id/],
    [{ keepFds: [1] }, /above stdio/],
  ])('rejects %j', (options, message) => {
    expect(() => normalizeOptions(options)).toThrow(message);
  });

  it('parses sizes', () => {
    expect(parseSize('512m', 'x')).toBe(512 * 1024 ** 2);
    expect(parseSize('2G', 'x')).toBe(2 * 1024 ** 3);
    expect(parseSize('1kib', 'x')).toBe(1024);
    expect(parseSize(4096, 'x')).toBe(4096);
    expect(() => parseSize('0', 'x')).toThrow(/expected a size/);
    expect(() => parseSize('big', 'x')).toThrow(/expected a size/);
  });
});

describe('sandboxEnv', () => {
  it('layers caller, sandbox and process variables, removes undefined and marks the sandbox', () => {
    const env = sandboxEnv({ env: { A: '1', HOME: undefined }, inheritEnv: false, passEnv: [] }, { B: '2' });
    expect(env).toEqual({ A: '1', B: '2', SANDBOX_RUN: '1' });
    expect(sandboxEnv({ env: {}, inheritEnv: true, passEnv: [] }).PATH).toBe(process.env.PATH);
  });

  it('drops inherited variables that look like credentials unless named', () => {
    process.env.GITHUB_TOKEN = 'ghp_x';
    process.env.MY_API_KEY = 'k';
    try {
      const env = sandboxEnv({ env: { EXPLICIT_TOKEN: 'mine' }, inheritEnv: true, passEnv: ['MY_API_KEY'] });
      expect(env.GITHUB_TOKEN).toBeUndefined();
      expect(env.MY_API_KEY).toBe('k');
      expect(env.EXPLICIT_TOKEN).toBe('mine');
    } finally {
      delete process.env.GITHUB_TOKEN;
      delete process.env.MY_API_KEY;
    }
  });

  it('also drops URLs with a password, *_KEY/_PASS/_PWD/_JWT/_DSN and host socket addresses, saying once which', () => {
    const inherited = {
      PATH: '/bin',
      DATABASE_URL: 'postgres://app:s3cret@db/app',
      PLAIN_URL: 'https://example.com/x',
      SIGNING_KEY: 'k',
      DB_PASS: 'p',
      ADMIN_PWD: 'p',
      SESSION_JWT: 'j',
      SENTRY_DSN: 'd',
      SSH_AUTH_SOCK: '/run/user/1/ssh',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1/bus',
      XDG_RUNTIME_DIR: '/run/user/1',
      KEYBOARD: 'us',
    };
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof write;
    try {
      expect(inheritedEnv(inherited, ['SENTRY_DSN'])).toEqual({ PATH: '/bin', PLAIN_URL: 'https://example.com/x', SENTRY_DSN: 'd', KEYBOARD: 'us' });
      inheritedEnv(inherited, ['SENTRY_DSN']);
    } finally {
      process.stderr.write = write;
    }
    expect(written).toEqual([
      'sandbox-run: warning: not passed into the sandbox (they look like credentials or host sockets): ' +
        'ADMIN_PWD DATABASE_URL DBUS_SESSION_BUS_ADDRESS DB_PASS SESSION_JWT SIGNING_KEY SSH_AUTH_SOCK XDG_RUNTIME_DIR; ' +
        "pass one with --pass-env NAME (passEnv: ['NAME'])\n",
    ]);
  });

  it('masks credentials in every home: $HOME and the passwd entry', () => {
    const other = tempDir('sandbox-run-home-');
    try {
      writeFileSync(join(home.path, '.pgpass'), 'x');
      writeFileSync(join(other.path, '.vault-token'), 'x');
      writeFileSync(join(other.path, '.bash_history'), 'x');
      expect(masksFor([], [], [home.path, other.path]).sort()).toEqual(
        [join(home.path, '.pgpass'), join(other.path, '.bash_history'), join(other.path, '.vault-token')].sort(),
      );
    } finally {
      rmSync(join(home.path, '.pgpass'));
      other.remove();
    }
  });

  it('splits half of the memory between the sandboxes running at once', () => {
    const gib = 2 ** 30;
    expect(defaultSizes(1, 16 * gib)).toEqual({ upper: 4 * gib, tmpfs: 2 * gib, concurrency: 1 });
    expect(defaultSizes(8, 16 * gib)).toEqual({ upper: 512 * 2 ** 20, tmpfs: 256 * 2 ** 20, concurrency: 8 });
    expect(defaultSizes(1000, 16 * gib)).toEqual({ upper: 256 * 2 ** 20, tmpfs: 64 * 2 ** 20, concurrency: 1000 }); // the floor
    expect(helperArgs(normalizeOptions({ workdir: 'none', concurrency: 4 }), null)).toEqual(expect.arrayContaining([String(defaultSizes(4).upper)]));
    expect(() => normalizeOptions({ concurrency: 0 })).toThrow(/concurrency: expected a positive number/);
  });

  it('masks credential stores in the home directory unless allowed', () => {
    mkdirSync(join(home.path, '.ssh'));
    writeFileSync(join(home.path, '.npmrc'), '//registry/:_authToken=x');
    try {
      expect(helperArgs(normalizeOptions({ workdir: 'none' }), ['true']).join(' ')).toContain(
        `--mask ${join(home.path, '.ssh')} --mask ${join(home.path, '.npmrc')}`,
      );
      expect(helperArgs(normalizeOptions({ workdir: 'none', allowHome: ['.npmrc'] }), ['true']).join(' ')).not.toContain('.npmrc');
    } finally {
      rmSync(join(home.path, '.ssh'), { recursive: true });
      rmSync(join(home.path, '.npmrc'));
    }
  });
});

describe('optionsFromFlags', () => {
  it('maps CLI flags to library options', () => {
    expect(
      optionsFromFlags({
        overlay: ['child+parent:/data'],
        bind: ['/out'],
        roBind: ['/etc:/host-etc'],
        env: ['A=1=2'],
        unsetEnv: ['HOME'],
        cleanEnv: true,
        rlimit: ['nofile=10:20', 'core=0'],
        network: 'host',
      }),
    ).toEqual({
      overlays: [{ lower: ['child', 'parent'], target: '/data' }],
      binds: [
        { source: '/out', readonly: false },
        { source: '/etc', target: '/host-etc', readonly: true },
      ],
      tmpfs: [],
      env: { A: '1=2', HOME: undefined },
      inheritEnv: false,
      rlimits: { nofile: [10, 20], core: 0 },
      network: 'host',
    });
  });

  it.each([
    [{ overlay: ['/a'] }, /--overlay '\/a': expected SRC:DST/],
    [{ env: ['NOVALUE'] }, /--env 'NOVALUE': expected NAME=VALUE/],
    [{ rlimit: ['nofile'] }, /--rlimit 'nofile'/],
  ])('rejects %j', (flags, message) => {
    expect(() => optionsFromFlags(flags)).toThrow(message);
  });
});
