// The layer store against the real kernel: overlayfs, the helper, PostgreSQL, node-tar.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LayerStore, openStore, run, type Sandbox } from '../../src/index.js';
import { CLI, eventually, NODE, ROOT, tempDir, treeDigest } from './support.js';

const exec = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

let root: { path: string; remove: () => void };
beforeAll(() => {
  root = tempDir('sandbox-run-layers-');
});
afterAll(() => root.remove());

let counter = 0;
/** A fresh store in this file's temp dir. */
async function freshStore(): Promise<LayerStore> {
  return openStore({ dir: join(root.path, `store-${++counter}`) });
}

function fresh(name: string): string {
  const dir = join(root.path, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A small tree with every kind of entry a layer holds. */
function sampleTree(): string {
  const dir = fresh('sample');
  mkdirSync(join(dir, 'sub/deeper'), { recursive: true });
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'sub/b.txt'), 'b\n');
  writeFileSync(join(dir, 'sub/deeper/c.bin'), randomBytes(100_000));
  writeFileSync(join(dir, 'secret'), 'only me\n', { mode: 0o600 });
  symlinkSync('sub/b.txt', join(dir, 'link'));
  linkSync(join(dir, 'a.txt'), join(dir, 'hard'));
  utimesSync(join(dir, 'a.txt'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
  chmodSync(dir, 0o700);
  return dir;
}

/** Lines a sandbox sees: `ls -A` of each path (or "missing"). */
async function seen(store: LayerStore, layer: string, script: string): Promise<string> {
  const result = await run('/bin/sh', ['-c', script], { workdir: 'none', overlays: [{ lower: await store.lowerDirs(layer), target: '/tmp/l' }] });
  expect(result.stderr).toBe('');
  return result.stdout;
}

describe('snapshot', () => {
  it('keeps types, modes, symlinks, hard links and times, and reuses an identical layer', async () => {
    const store = await freshStore();
    const dir = sampleTree();
    const info = await store.snapshot(dir, { name: 'sample' });
    expect(info).toMatchObject({ names: ['sample'], source: { kind: 'snapshot', path: dir } });
    expect(info.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(treeDigest(info.path)).toBe(treeDigest(dir));
    expect(lstatSync(info.path).mode & 0o777).toBe(0o700);
    expect(lstatSync(join(info.path, 'secret')).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(info.path, 'hard')).ino).toBe(lstatSync(join(info.path, 'a.txt')).ino);
    expect(lstatSync(join(info.path, 'a.txt')).mtime.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    const again = await store.snapshot(dir, { name: 'again' });
    expect(again.digest).toBe(info.digest);
    expect((await store.get('sample'))!.names).toEqual(['again', 'sample']);
    expect(await store.list()).toHaveLength(1);
  });

  it('refuses sockets and fifos (and unreadable files for non-root), naming each', async () => {
    const store = await freshStore();
    const dir = fresh('special');
    writeFileSync(join(dir, 'ok'), 'ok');
    await exec('mkfifo', [join(dir, 'pipe')]);
    const server = createServer().listen(join(dir, 'sock'));
    await once(server, 'listening');
    if (process.getuid!() !== 0) writeFileSync(join(dir, 'closed'), 'x', { mode: 0 });
    try {
      const error = await store.snapshot(dir, { name: 'special' }).catch((e: Error) => e);
      expect(String(error)).toMatch(/pipe \(fifo\)/);
      expect(String(error)).toMatch(/sock \(socket\)/);
      if (process.getuid!() !== 0) expect(String(error)).toMatch(/closed \(not readable\)/);
      expect(await store.list()).toEqual([]);
      expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('snapshot of a directory being written', () => {
  it('is refused, and nothing is kept', async () => {
    const store = await freshStore();
    const dir = sampleTree();
    // 32 MB to copy and hash keeps the snapshot busy for ~100 ms, so the writer surely appends meanwhile even on a
    // loaded machine (a small tree copies in a few ms, during which a descheduled writer may not write at all).
    writeFileSync(join(dir, 'large'), Buffer.alloc(32 << 20, 1));
    const writer = spawn('/bin/sh', ['-c', 'while :; do echo x >> busy; done'], { cwd: dir, stdio: 'ignore' });
    try {
      await eventually(() => existsSync(join(dir, 'busy')) && lstatSync(join(dir, 'busy')).size > 100, 5000, 'the writer');
      await expect(store.snapshot(dir, { name: 'busy' })).rejects.toThrow(/changed while being copied \(busy\)/);
      expect(await store.list()).toEqual([]);
      expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
    } finally {
      writer.kill('SIGKILL');
    }
  });
});

describe('export / import', () => {
  it('round-trips a layer stack into a second store: same digests, same trees, whiteouts included', async () => {
    const store = await freshStore();
    await store.snapshot(sampleTree(), { name: 'base' });
    const child = await store.build({
      name: 'child',
      parent: 'base',
      mountPoint: '/tmp/l',
      run: ['/bin/sh', '-c', 'rm /tmp/l/a.txt; rm -r /tmp/l/sub; mkdir /tmp/l/sub; echo new > /tmp/l/sub/new'],
    });
    for (const file of ['stack.tar', 'stack.tar.gz']) {
      const archive = join(root.path, file);
      expect((await store.export('child', archive)).map((info) => info.names)).toEqual([['child'], ['base']]);
      const other = await freshStore();
      const imported = await other.import(archive);
      expect(imported.map((info) => info.digest)).toEqual(await Promise.all(['child', 'base'].map(async (name) => (await store.require(name)).digest)));
      for (const name of ['base', 'child']) expect(treeDigest((await other.require(name)).path)).toBe(treeDigest((await store.require(name)).path));
      expect(await seen(other, 'child', 'ls -A /tmp/l /tmp/l/sub')).toBe(await seen(store, 'child', 'ls -A /tmp/l /tmp/l/sub'));
    }
    // --single needs the parent in the importing store.
    const single = join(root.path, 'single.tar');
    await store.export(child.digest, single, { single: true });
    const empty = await freshStore();
    await expect(empty.import(single)).rejects.toThrow(/needs parent sha256:/);
  });
});

describe('build', () => {
  it('commits whiteouts and opaque dirs: the child hides what it deleted, the parent still has it', async () => {
    const store = await freshStore();
    await store.snapshot(sampleTree(), { name: 'parent' });
    await store.build({
      name: 'child',
      parent: 'parent',
      mountPoint: '/tmp/l',
      run: ['/bin/sh', '-c', 'rm /tmp/l/a.txt && rm -r /tmp/l/sub && mkdir /tmp/l/sub && echo n > /tmp/l/sub/new'],
    });
    const script = 'cd /tmp/l && ls -A . sub';
    expect(await seen(store, 'parent', script)).toBe('.:\na.txt\nhard\nlink\nsecret\nsub\n\nsub:\nb.txt\ndeeper');
    expect(await seen(store, 'child', script)).toBe('.:\nhard\nlink\nsecret\nsub\n\nsub:\nnew');
    expect((await store.diff((await store.require('child')).path, await store.lowerDirs('parent'))).map((e) => `${e.kind} ${e.path}`)).toEqual([
      'D /a.txt',
      'C /sub',
      'D /sub/b.txt',
      'D /sub/deeper',
      'A /sub/new',
    ]);
  });

  it('diffs a grandchild against a stack with whiteouts: a path deleted below and written again is added', async () => {
    const store = await freshStore();
    await store.snapshot(sampleTree(), { name: 'g0' });
    await store.build({ name: 'g1', parent: 'g0', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', 'rm /tmp/l/a.txt && rm -r /tmp/l/sub && mkdir /tmp/l/sub'] });
    const g2 = await store.build({
      name: 'g2',
      parent: 'g1',
      mountPoint: '/tmp/l',
      run: ['/bin/sh', '-c', 'echo back > /tmp/l/a.txt; echo s > /tmp/l/secret; echo b > /tmp/l/sub/b.txt'],
    });
    expect((await store.diff(g2.path, await store.lowerDirs('g1'))).map((e) => `${e.kind} ${e.path}`)).toEqual([
      'A /a.txt',
      'C /secret',
      'C /sub',
      'A /sub/b.txt',
    ]);
    expect(await seen(store, 'g2', 'cat /tmp/l/a.txt')).toBe('back');
  });

  it('is cached by parent, command, mount point and input content; --force rebuilds', async () => {
    const store = await freshStore();
    const cwd = fresh('inputs');
    writeFileSync(join(cwd, 'seed.sql'), 'one\n');
    const recipe = {
      name: 'seeded',
      mountPoint: '/tmp/l',
      cwd,
      inputs: ['*.sql'],
      run: ['/bin/sh', '-c', 'cat seed.sql > /tmp/l/out; head -c 16 /dev/urandom | od -x > /tmp/l/nonce'],
    };
    const first = await store.build(recipe);
    expect(readFileSync(join(first.path, 'out'), 'utf8')).toBe('one\n');
    expect((await store.build(recipe)).digest).toBe(first.digest);
    writeFileSync(join(cwd, 'seed.sql'), 'two\n');
    const second = await store.build(recipe);
    expect(second.digest).not.toBe(first.digest);
    expect(readFileSync(join(second.path, 'out'), 'utf8')).toBe('two\n');
    expect((await store.build(recipe, { force: true })).digest).not.toBe(second.digest);
    expect((await store.build({ ...recipe, mountPoint: '/tmp/other', run: ['/bin/true'] })).digest).not.toBe(first.digest);
    // Only the last build keeps its name; prune drops the other layers and their cache entries.
    await store.prune();
    expect(await store.list()).toHaveLength(1);
    expect(readdirSync(join(store.dir, 'builds'))).toHaveLength(1);
  });

  it('builds concurrent identical recipes once, in one process and across processes', async () => {
    const store = await freshStore();
    const recipe = { name: 'once', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', 'head -c 16 /dev/urandom | od -x > /tmp/l/nonce'] };
    const results = await Promise.all([store.build(recipe), store.build(recipe), store.build(recipe)]);
    expect(new Set(results.map((info) => info.digest)).size).toBe(1);
    const cli = (name: string) =>
      exec(NODE, [
        CLI,
        'build',
        '--store',
        store.dir,
        '--name',
        name,
        '--mount',
        '/tmp/x',
        '--',
        '/bin/sh',
        '-c',
        'head -c 16 /dev/urandom | od -x > /tmp/x/n',
      ]);
    const outputs = await Promise.all([cli('p1'), cli('p2'), cli('p3')]);
    const digests = outputs.map((out) => /sha256:[0-9a-f]{64}/.exec(out.stdout)![0]);
    expect(new Set(digests).size).toBe(1);
    expect((await store.list()).length).toBe(2);
  });

  it('runs a function recipe against the live build sandbox, cached by its source', async () => {
    const store = await freshStore();
    const recipe = {
      name: 'fn',
      mountPoint: '/tmp/l',
      run: async (sandbox: Sandbox) => {
        const result = await sandbox.exec('/bin/sh', ['-c', 'echo from-fn > /tmp/l/f; head -c 8 /dev/urandom | od -x > /tmp/l/nonce']);
        expect(result.exitCode).toBe(0);
      },
    };
    const first = await store.build(recipe);
    expect(readFileSync(join(first.path, 'f'), 'utf8')).toBe('from-fn\n');
    expect((await store.build(recipe)).digest).toBe(first.digest);
  });

  it('fails on the CLI with exit 125, the output tail, and nothing kept', async () => {
    const store = await freshStore();
    const failed = await exec(NODE, [
      CLI,
      'build',
      '--store',
      store.dir,
      '--name',
      'bad',
      '--mount',
      '/tmp/x',
      '--',
      '/bin/sh',
      '-c',
      'echo last words; exit 3',
    ]).catch((error: { code: number; stderr: string }) => error);
    expect(failed).toMatchObject({ code: 125 });
    expect((failed as { stderr: string }).stderr).toMatch(/^sandbox-run: build bad failed \(exit 3\)[\s\S]*last words/);
    expect(await store.list()).toEqual([]);
  });

  it('keeps nothing from a failing build and reports the output tail', async () => {
    const store = await freshStore();
    await expect(
      store.build({ name: 'broken', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', 'echo half > /tmp/l/x; echo it went wrong; exit 4'] }),
    ).rejects.toThrow(/build broken failed \(exit 4\)[\s\S]*it went wrong/);
    expect(await store.list()).toEqual([]);
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
  });
});

describe('a PostgreSQL data directory as a layer', () => {
  it.skipIf(!existsSync(join(PG_BIN, 'postgres')))('starts a sandboxed postgres on a snapshot of a cluster made by initdb', async () => {
    const store = await freshStore();
    const host = fresh('pg');
    const init = await run(join(PG_BIN, 'initdb'), ['-D', join(host, 'data'), '--no-sync', '--auth=trust', '-U', 'postgres', '--wal-segsize=1'], {
      workdir: 'none',
      binds: [{ source: host }],
      all: true,
    });
    expect(init.exitCode, init.all).toBe(0);
    const layer = await store.snapshot(join(host, 'data'), { name: 'pgdata' });
    expect(lstatSync(layer.path).mode & 0o777).toBe(0o700);
    const script = [
      `${PG_BIN}/pg_ctl start -w -s -D /tmp/pg -l /tmp/log -o "-c listen_addresses='' -k /tmp"`,
      `${PG_BIN}/psql -h /tmp -U postgres -d postgres -Atc 'select 40 + 2'`,
      `${PG_BIN}/pg_ctl stop -s -D /tmp/pg -m fast`,
    ].join(' && ');
    const result = await run('/bin/sh', ['-c', script], {
      workdir: 'none',
      overlays: [{ lower: await store.lowerDirs('pgdata'), target: '/tmp/pg' }],
      all: true,
    });
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout.trim()).toBe('42');
    expect(treeDigest(layer.path)).toBe(treeDigest(join(host, 'data'))); // the layer itself never changes
  });
});

/** One tar entry as raw blocks (header + padded data). */
function tarEntry(fields: { path: string; type?: string; mode?: number; linkpath?: string; data?: string }): Buffer {
  const data = Buffer.from(fields.data ?? '');
  const header = new Header({
    path: fields.path,
    type: (fields.type ?? 'File') as 'File',
    mode: fields.mode ?? 0o644,
    size: data.length,
    mtime: new Date(0),
    uid: 0,
    gid: 0,
    ...(fields.linkpath ? { linkpath: fields.linkpath } : {}),
  });
  header.encode();
  return Buffer.concat([header.block!, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const HEX = 'a'.repeat(64);
const manifest = (digest = `sha256:${HEX}`) =>
  JSON.stringify({
    format: 'sandbox-run-layers',
    version: 1,
    layers: [{ digest, names: ['evil'], size: 0, created: '2020-01-01T00:00:00Z', source: { kind: 'snapshot', path: '/x', method: 'copy' } }],
  });

function craft(name: string, entries: Parameters<typeof tarEntry>[0][], digest?: string): string {
  const file = join(root.path, `${name}.tar`);
  const blocks = [
    tarEntry({ path: 'manifest.json', data: manifest(digest) }),
    tarEntry({ path: `${HEX}/tree/`, type: 'Directory', mode: 0o755 }),
    ...entries.map(tarEntry),
    Buffer.alloc(1024),
  ];
  writeFileSync(file, Buffer.concat(blocks));
  return file;
}

describe('import of hostile archives', () => {
  const cases: [string, Parameters<typeof tarEntry>[0][], RegExp][] = [
    ['absolute', [{ path: '/etc/evil', data: 'x' }], /absolute path '\/etc\/evil'/],
    ['dotdot', [{ path: `${HEX}/tree/../../../evil`, data: 'x' }], /climbs out with '\.\.'/],
    ['symlink-out', [{ path: `${HEX}/tree/up`, type: 'SymbolicLink', linkpath: '../../../../etc' }], /symlink .* points out of the layer/],
    ['symlink-absolute', [{ path: `${HEX}/tree/abs`, type: 'SymbolicLink', linkpath: '/etc/passwd' }], /symlink .* absolute path/],
    ['hardlink-out', [{ path: `${HEX}/tree/h`, type: 'Link', linkpath: '/etc/passwd' }], /hard link .* points out of the layer/],
    ['device', [{ path: `${HEX}/tree/null`, type: 'CharacterDevice' }], /CharacterDevice \(device nodes/],
    ['setuid', [{ path: `${HEX}/tree/su`, mode: 0o4755, data: 'x' }], /setuid or setgid/],
    ['setgid', [{ path: `${HEX}/tree/sg`, mode: 0o2755, data: 'x' }], /setuid or setgid/],
    ['fifo', [{ path: `${HEX}/tree/pipe`, type: 'FIFO' }], /FIFO/],
    ['block-device', [{ path: `${HEX}/tree/disk`, type: 'BlockDevice' }], /BlockDevice/],
    ['stray', [{ path: 'elsewhere/file', data: 'x' }], /unexpected path 'elsewhere\/file'/],
    ['mismatch', [{ path: `${HEX}/tree/file`, data: 'x' }], /digest mismatch/],
  ];
  it.each(cases)('rejects %s with one line and leaves nothing behind', async (name, entries, message) => {
    const store = await freshStore();
    const error = (await store.import(craft(name, entries)).catch((e: Error) => e)) as Error;
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^refusing to import /);
    expect(error.message).not.toMatch(/\n/);
    expect(await store.list()).toEqual([]);
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
    expect(existsSync('/etc/evil')).toBe(false);
  });
});

describe('crashes and concurrency', () => {
  /** A tree big enough that copying it takes a while. */
  function bigTree(): string {
    const dir = fresh('big');
    for (let i = 0; i < 200; i++) writeFileSync(join(dir, `f${i}`), randomBytes(512 * 1024));
    return dir;
  }

  async function killMidway(args: string[], store: LayerStore): Promise<void> {
    const child = spawn(NODE, [CLI, ...args, '--store', store.dir], { stdio: 'ignore' });
    const exited = once(child, 'exit');
    // The staging dir appearing says the write has begun.
    await eventually(() => readdirSync(join(store.dir, 'tmp')).length > 0, 10_000, 'a staging dir');
    child.kill('SIGKILL');
    await exited;
    const reopened = await openStore({ dir: store.dir });
    expect(readdirSync(join(reopened.dir, 'tmp'))).toEqual([]);
  }

  it('SIGKILL during snapshot leaves no visible layer and no leftovers after the next open', async () => {
    const store = await freshStore();
    await killMidway(['snapshot', bigTree(), '--name', 'big'], store);
    expect(await store.list()).toEqual([]);
  });

  it('SIGKILL during import leaves no visible layer', async () => {
    const source = await freshStore();
    await source.snapshot(bigTree(), { name: 'big' });
    const archive = join(root.path, 'big.tar');
    await source.export('big', archive);
    const store = await freshStore();
    await killMidway(['import', archive], store);
    expect(await store.list()).toEqual([]);
    expect((await store.import(archive))[0]!.digest).toBe((await source.require('big')).digest);
  });

  it('two processes snapshot, tag and remove in one store at once', async () => {
    const store = await freshStore();
    const dirs = Array.from({ length: 4 }, () => sampleTree());
    await Promise.all(dirs.map((dir, i) => exec(NODE, [CLI, 'snapshot', dir, '--name', `s${i}`, '--store', store.dir])));
    expect((await store.list()).flatMap((info) => info.names).sort()).toEqual(['s0', 's1', 's2', 's3']);
    await Promise.all([exec(NODE, [CLI, 'rm', 's0', '--store', store.dir]), exec(NODE, [CLI, 'rm', 's1', '--store', store.dir])]);
    expect((await store.list()).flatMap((info) => info.names).sort()).toEqual(['s2', 's3']);
  });

  it('a leased layer survives rm and prune until the lease ends', async () => {
    const store = await freshStore();
    const info = await store.snapshot(sampleTree(), { name: 'held' });
    {
      await using _lease = await store.lease('held');
      expect(await store.remove('held')).toEqual([]);
      expect((await store.prune()).removed).toEqual([]);
      expect(existsSync(info.path)).toBe(true);
    }
    expect((await store.prune()).removed.map((layer) => layer.digest)).toEqual([info.digest]);
    expect(existsSync(info.path)).toBe(false);
  });
});

describe('a read-only view of a store', () => {
  it('serves list and lowerDirs from inside a sandbox, where the store is mounted read-only', async () => {
    const store = await freshStore();
    await store.snapshot(sampleTree(), { name: 'ro' });
    const script = `import { openStore } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
      const store = await openStore({ dir: ${JSON.stringify(store.dir)} });
      console.log((await store.list()).map((l) => l.names.join()).join(), (await store.lowerDirs('ro')).length);`;
    const result = await run(NODE, ['--input-type=module', '-e', script], { binds: [{ source: store.dir, readonly: true }], all: true });
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toBe('ro 1');
  });
});

describe('CLI', () => {
  it('layers, inspect, diff of a kept job dir, prune', async () => {
    const store = await freshStore();
    const dir = sampleTree();
    const cli = (...args: string[]) => exec(NODE, [CLI, ...args, '--store', store.dir]);
    expect((await cli('snapshot', dir, '--name', 'demo')).stdout).toMatch(/^snapshot demo sha256:[0-9a-f]{64} \(.*\) by (reflink|copy)\n$/);
    expect((await cli('layers')).stdout).toMatch(/^NAME +DIGEST +SIZE +PARENT +CREATED\ndemo +[0-9a-f]{12} /);
    expect(JSON.parse((await cli('inspect', 'demo')).stdout)).toMatchObject({ names: ['demo'], path: expect.stringContaining(store.dir) });
    const job = fresh('job');
    mkdirSync(join(job, 'upper'));
    writeFileSync(join(job, 'upper/a.txt'), 'changed');
    writeFileSync(join(job, 'upper/new'), 'added');
    await exec('mknod', [join(job, 'upper/secret'), 'c', '0', '0']);
    expect((await cli('diff', job, '--lower', dir)).stdout).toBe('C /a.txt\nA /new\nD /secret\n');
    expect((await cli('diff', job)).stdout).toBe('A /a.txt\nA /new\nD /secret\n');
    writeFileSync(join(job, 'kept.json'), JSON.stringify({ lower: [dir], target: dir }));
    expect((await cli('diff', job)).stdout).toBe('C /a.txt\nA /new\nD /secret\n');
    const missing = await cli('inspect', 'nope').catch((error: { code: number; stderr: string }) => error);
    expect(missing).toMatchObject({ code: 2, stderr: "sandbox-run: no layer named 'nope' (see sandbox-run layers)\n" });
    const build = () =>
      exec(NODE, [CLI, 'build', '--store', store.dir, '--name', 'kid', '--parent', 'demo', '--mount', '/tmp/d', '--', '/bin/sh', '-c', 'echo k > /tmp/d/k']);
    expect((await build()).stdout).toMatch(/^built kid sha256:/);
    expect((await build()).stdout).toMatch(/^cached kid sha256:/);
    await cli('rm', 'kid');
    await cli('rm', 'demo');
    expect((await cli('layers')).stdout.trim().split('\n')).toHaveLength(1);
  });
});
