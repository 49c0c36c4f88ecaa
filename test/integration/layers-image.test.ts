// `import` of OCI image layouts and docker save archives, built here from
// tar entries (no registry, no docker): round trip with our own export,
// multi-arch index, zstd, whiteouts seen through a real overlay, and
// hostile images refused with one line, leaving nothing behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOci, type LayerStore, openStore, run } from '../../src/index.js';
import { dockerSave, type Entry, ociLayout, sha, tarOf } from './image-fixtures.js';
import { tempDir, treeDigest } from './support.js';

let root: { path: string; remove: () => void };
beforeAll(() => {
  root = tempDir('sandbox-run-image-');
});
afterAll(() => root.remove());

let n = 0;
const fresh = (what: string) => join(root.path, `${what}-${++n}`);
const freshStore = () => openStore({ dir: fresh('store') });

/** What a sandbox sees of a layer stack mounted at /tmp/img. */
async function seen(store: LayerStore, name: string, script: string): Promise<string> {
  const result = await run('/bin/sh', ['-c', script], { workdir: 'none', overlays: [{ lower: await store.lowerDirs(name), target: '/tmp/img' }] });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.trim();
}

async function expectRefused(store: LayerStore, file: string, message: RegExp, options = {}): Promise<void> {
  const error = (await store.import(file, options).catch((e: Error) => e)) as Error;
  expect(error).toBeInstanceOf(Error);
  expect(error.message).toMatch(/^refusing to import /);
  expect(error.message).toMatch(message);
  expect(error.message).not.toMatch(/\n/);
  expect(await store.list()).toEqual([]);
  expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
}

const base: Entry[] = [
  { path: './', type: 'Directory', mode: 0o755 },
  { path: './etc/', type: 'Directory', mode: 0o755 },
  { path: './etc/os-release', data: 'ID=test\n' },
  { path: './etc/localtime', type: 'SymbolicLink', linkpath: '/usr/share/zoneinfo/UTC' },
  { path: './bin/', type: 'Directory', mode: 0o755 },
  { path: './bin/su', mode: 0o4755, data: '#!/bin/sh\n' },
  { path: './old', data: 'deleted above\n' },
  { path: './cache/', type: 'Directory', mode: 0o755 },
  { path: './cache/stale', data: 'hidden by the opaque dir\n' },
  { path: './data', data: 'one' },
  { path: './data-link', type: 'Link', linkpath: './data' },
];
const top: Entry[] = [
  { path: './.wh.old', data: '' },
  { path: './cache/', type: 'Directory', mode: 0o755 },
  { path: './cache/.wh..wh..opq', data: '' },
  { path: './cache/fresh', data: 'new\n' },
  { path: './etc/app.conf', data: 'port=1\n' },
];
const config = {
  Env: ['PATH=/usr/bin:/bin', 'PGDATA=/var/lib/pg'],
  Entrypoint: ['/entry.sh'],
  Cmd: ['serve'],
  WorkingDir: '/srv',
  User: '999',
  ExposedPorts: { '5432/tcp': {} },
};

describe('image import', () => {
  it('imports an OCI layout: stacked layers, the image config on the top one, whiteouts and opaque dirs seen through overlayfs', async () => {
    const store = await freshStore();
    const layout = ociLayout(fresh('layout'), [{ layers: [tarOf(base), tarOf(top)], config }], 'example.org/team/app:1.2');
    const result = await store.importImage(layout);
    expect(result.name).toBe('example.org/team/app:1.2');
    expect(result.setuidDropped).toBe(1);
    const [upper, lower] = result.layers;
    expect(upper!.parent).toBe(lower!.digest);
    expect(lower!.parent).toBeUndefined();
    const info = await store.require('example.org/team/app:1.2');
    expect(info.image).toMatchObject({
      reference: 'example.org/team/app:1.2',
      Env: config.Env,
      Entrypoint: ['/entry.sh'],
      Cmd: ['serve'],
      WorkingDir: '/srv',
      User: '999',
      ExposedPorts: ['5432/tcp'],
      platform: expect.stringMatching(/^linux\//),
    });
    expect(info.source).toMatchObject({ kind: 'image', diffId: sha(tarOf(top)) });
    expect(
      await seen(
        store,
        'example.org/team/app:1.2',
        'cd /tmp/img && ls -A . cache && cat etc/os-release etc/app.conf && readlink etc/localtime && stat -c %a bin/su && stat -c %h data',
      ),
    ).toBe(['.:', 'bin', 'cache', 'data', 'data-link', 'etc', '', 'cache:', 'fresh', 'ID=test', 'port=1', '/usr/share/zoneinfo/UTC', '755', '2'].join('\n'));
    expect((await store.verify()).map((r) => r.status)).toEqual(['ok', 'ok']);
  });

  it('round trip: our export --format oci imports into another store with the same trees, digests and name', async () => {
    const a = await freshStore();
    const src = fresh('src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a\n');
    writeFileSync(join(src, 'sub/b.bin'), Buffer.alloc(70_000, 3), { mode: 0o600 });
    symlinkSync('sub/b.bin', join(src, 'link'));
    const parent = await a.snapshot(src, { name: 'rt-base' });
    writeFileSync(join(src, 'c.txt'), 'c\n');
    const child = await a.snapshot(src, { name: 'rt-top', parent: 'rt-base' });
    const layout = fresh('rt.oci');
    await exportOci(a, 'rt-top', layout);
    const b = await freshStore();
    const [t, p] = await b.import(layout);
    expect([t!.digest, p!.digest]).toEqual([child.digest, parent.digest]);
    expect(t!.names).toEqual(['rt-top']);
    expect(treeDigest(t!.path)).toBe(treeDigest(child.path));
    expect(treeDigest(p!.path)).toBe(treeDigest(parent.path));
  });

  it('imports a docker save archive (legacy layout) and names it by RepoTags', async () => {
    const store = await freshStore();
    const file = dockerSave(fresh('save.tar'), [tarOf(base), tarOf(top)], 'example/app:2', config);
    const [upper] = await store.import(file);
    expect(upper!.names).toEqual(['example/app:2']);
    expect(upper!.image?.Cmd).toEqual(['serve']);
    expect(await seen(store, 'example/app:2', 'ls /tmp/img; cat /tmp/img/cache/fresh')).toBe('bin\ncache\ndata\ndata-link\netc\nnew');
  });

  it('imports a tar of an OCI layout, with zstd layers', async () => {
    const store = await freshStore();
    const layout = ociLayout(fresh('zst'), [{ layers: [tarOf(base), tarOf(top)], compression: 'zstd' }], '3');
    const file = join(root.path, 'redis.tar');
    execFileSync('tar', ['-cf', file, '-C', layout, '.']);
    const layers = await store.import(file);
    // A bare ref.name is a tag: the archive's name is the repository.
    expect(layers[0]!.names).toEqual(['redis:3']);
    expect(await seen(store, 'redis:3', 'cat /tmp/img/etc/os-release')).toBe('ID=test');
  });

  it("picks the host's platform from a multi-arch index, another with --platform", async () => {
    const other = process.arch === 'arm64' ? 'amd64' : 'arm64';
    const images = [
      { layers: [tarOf([{ path: 'arch', data: other }])], architecture: other, platform: true },
      { layers: [tarOf([{ path: 'arch', data: 'host' }])], platform: true },
    ];
    const layout = ociLayout(fresh('multi'), images, 'multi:1');
    const store = await freshStore();
    await store.import(layout);
    expect(await seen(store, 'multi:1', 'cat /tmp/img/arch')).toBe('host');
    const second = await freshStore();
    await second.import(layout, { platform: `linux/${other}`, name: 'multi:other' });
    expect(readFileSync(join((await second.require('multi:other')).path, 'arch'), 'utf8')).toBe(other);
    await expectRefused(await freshStore(), layout, /no image for linux\/s390x in the index \(it has linux\/\w+, linux\/\w+\): choose one with --platform/, {
      platform: 'linux/s390x',
    });
  });
});

/**
 * The hostile-tar cases of layers.test.ts ("import of hostile archives") and
 * layers-import.test.ts, each as the one layer of an OCI image. Two rules
 * differ for images, on purpose: absolute symlinks are kept (they mean the
 * image root) and setuid/setgid bits are dropped (see oci-import.ts).
 */
describe('hostile images', () => {
  const refused: [string, Entry[], RegExp][] = [
    ['absolute', [{ path: '/etc/evil', data: 'x' }], /absolute path '\/etc\/evil'/],
    ['dotdot', [{ path: '../../../evil', data: 'x' }], /climbs out with '\.\.'/],
    ['symlink-out', [{ path: 'up', type: 'SymbolicLink', linkpath: '../../../../etc' }], /symlink 'up' points out of the layer/],
    ['hardlink-out', [{ path: 'h', type: 'Link', linkpath: '/etc/passwd' }], /hard link 'h' points out of the layer/],
    ['hardlink-dotdot', [{ path: 'h', type: 'Link', linkpath: '../../etc/passwd' }], /hard link 'h' points out of the layer/],
    ['device', [{ path: 'null', type: 'CharacterDevice' }], /CharacterDevice \(device nodes/],
    ['fifo', [{ path: 'pipe', type: 'FIFO' }], /FIFO/],
    ['block-device', [{ path: 'disk', type: 'BlockDevice' }], /BlockDevice/],
    [
      'writing through a symlink',
      [
        { path: 'sub/', type: 'Directory', mode: 0o755 },
        { path: 's', type: 'SymbolicLink', linkpath: '/etc' },
        { path: 's/passwd', data: 'x' },
      ],
      /goes through the symlink/,
    ],
    [
      'an entry twice',
      [
        { path: 'x', data: '1' },
        { path: 'x', data: '2' },
      ],
      /appears twice/,
    ],
    [
      'a hard link to a later file',
      [
        { path: 'h', type: 'Link', linkpath: 'x' },
        { path: 'x', data: '1' },
      ],
      /no file extracted before it/,
    ],
    [
      'a hard link to a directory',
      [
        { path: 'd/', type: 'Directory', mode: 0o755 },
        { path: 'h', type: 'Link', linkpath: 'd' },
      ],
      /no file extracted before it/,
    ],
    ['an unreadable directory', [{ path: 'locked/', type: 'Directory', mode: 0o300 }], /not readable by its owner/],
    [
      'a whiteout of its own file',
      [
        { path: 'f', data: '1' },
        { path: '.wh.f', data: '' },
      ],
      /hides a path of its own layer/,
    ],
  ];
  it.each(refused)('refuses %s in a layer, leaving nothing behind', async (_name, entries, message) => {
    await expectRefused(await freshStore(), ociLayout(fresh('evil'), [{ layers: [tarOf(entries)] }]), message);
    expect(existsSync('/etc/evil')).toBe(false);
  });

  it('keeps absolute symlinks (the image root) and drops setuid/setgid bits', async () => {
    const store = await freshStore();
    const entries = [
      { path: 'abs', type: 'SymbolicLink', linkpath: '/etc/passwd' },
      { path: 'su', mode: 0o4755, data: 'x' },
      { path: 'sg', mode: 0o2755, data: 'x' },
    ];
    const { layers, setuidDropped } = await store.importImage(ociLayout(fresh('suid'), [{ layers: [tarOf(entries)] }]));
    expect(setuidDropped).toBe(2);
    expect(await seen(store, layers[0]!.digest, 'readlink /tmp/img/abs; stat -c %a /tmp/img/su /tmp/img/sg')).toBe('/etc/passwd\n755\n755');
  });

  const layer = tarOf([{ path: 'f', data: 'content' }]);
  it.each([
    [
      'a blob whose content is not its digest',
      () => ociLayout(fresh('bad'), [{ layers: [layer], layerDigests: [sha('other')] }]),
      /digest mismatch: layer 1 .* should be sha256:/,
    ],
    ['a diff_id that is not the layer', () => ociLayout(fresh('bad'), [{ layers: [layer], diffIds: [sha('other')] }]), /diff_id mismatch/],
    [
      'a manifest naming a blob outside blobs/',
      () => {
        const dir = ociLayout(fresh('bad'), [{ layers: [layer] }]);
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
        index.manifests[0].digest = 'sha256:../../../../etc/passwd';
        writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
        return dir;
      },
      /unsupported digest 'sha256:\.\.\/\.\.\//,
    ],
    [
      'a blob that is a symlink out of the layout',
      () => {
        const dir = ociLayout(fresh('bad'), [{ layers: [layer] }]);
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
        const blob = join(dir, 'blobs/sha256', index.manifests[0].digest.slice(7));
        const outside = fresh('outside');
        writeFileSync(outside, readFileSync(blob));
        rmSync(blob);
        symlinkSync(outside, blob);
        return dir;
      },
      /points outside the image .* through a symlink/,
    ],
    [
      'a docker manifest.json naming a layer outside',
      () => {
        const file = dockerSave(fresh('save.tar'), [layer]);
        const dir = fresh('unpacked');
        mkdirSync(dir);
        execFileSync('tar', ['-xf', file, '-C', dir]);
        const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
        manifest[0].Layers = ['../../../../etc/passwd'];
        writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
        return dir;
      },
      /layer 0 points outside the image/,
    ],
    [
      'an archive with a symlink out of it',
      () => {
        const file = fresh('evil.tar');
        writeFileSync(file, tarOf([{ path: 'index.json', type: 'SymbolicLink', linkpath: '../../../etc/passwd' }]));
        return file;
      },
      /symlink 'index.json' points out of the archive/,
    ],
    [
      'a truncated zstd layer',
      () => {
        const dir = ociLayout(fresh('bad'), [{ layers: [tarOf([{ path: 'big', data: Buffer.alloc(200_000, 1) }])], compression: 'zstd' }]);
        const manifestDigest = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
        const manifest = JSON.parse(readFileSync(join(dir, 'blobs/sha256', manifestDigest), 'utf8'));
        const blob = join(dir, 'blobs/sha256', manifest.layers[0].digest.slice(7));
        writeFileSync(blob, readFileSync(blob).subarray(0, 20));
        return dir;
      },
      /layer 1 .*(zstd|mismatch)/,
    ],
  ] as [string, () => string, RegExp][])('refuses %s', async (_what, make, message) => {
    await expectRefused(await freshStore(), make(), message);
  });
});

describe('sandbox-run import (CLI)', () => {
  it('imports a layout, prints the layers and the dropped setuid bits; inspect shows the image config', async () => {
    const { execFileSync: exec } = await import('node:child_process');
    const { CLI, NODE } = await import('./support.js');
    const dir = fresh('cli-store');
    const layout = ociLayout(fresh('pg'), [{ layers: [tarOf(base), tarOf(top)], config }], 'docker.io/library/postgres:16');
    const out = exec(NODE, [CLI, 'import', layout, '--store', dir], { encoding: 'utf8' });
    expect(out).toMatch(/^imported postgres:16 sha256:[0-9a-f]{64} /m);
    expect(out).toMatch(/dropped the setuid\/setgid bits of 1 files/);
    const info = JSON.parse(exec(NODE, [CLI, 'inspect', 'postgres:16', '--store', dir], { encoding: 'utf8' }));
    expect(info.image).toMatchObject({ reference: 'docker.io/library/postgres:16', Cmd: ['serve'], ExposedPorts: ['5432/tcp'] });
  });
});
