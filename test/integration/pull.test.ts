// `sandbox-run pull` against a real registry (Debian's docker-registry on
// 127.0.0.1, filled by skopeo with images built here): anonymous and
// bearer-token pulls (a token server in Node), credentials from a docker
// config file, a multi-arch index, our own export, a 307 to blob storage,
// layers in the store not fetched again, an interrupted download resumed
// with a Range request, 404 and a corrupted blob refused with nothing left.
// Skipped without docker-registry/skopeo unless SANDBOX_RUN_REQUIRE_REGISTRY=1
// (.ci/run installs them).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LayerStore, openStore, run } from '../../src/index.js';
import { hostArch, type ImageSpec, ociLayout, sha, tarOf, writeImage } from './image-fixtures.js';
import {
  missingRegistryTools,
  pushLayout,
  type Registry,
  selfSigned,
  startProxy,
  startRegistry,
  startTokenServer,
  type TestProxy,
  type TokenServer,
} from './registry-support.js';
import { CLI, NODE, tempDir, treeDigest } from './support.js';

const missing = missingRegistryTools();
if (missing && process.env.SANDBOX_RUN_REQUIRE_REGISTRY === '1') throw new Error(`SANDBOX_RUN_REQUIRE_REGISTRY=1 but ${missing}`);

let root: { path: string; remove: () => void };
let registry: Registry;
let tokens: TokenServer;
let secured: Registry;
const proxies: TestProxy[] = [];
let n = 0;
const fresh = (what: string) => join(root.path, `${what}-${++n}`);
const freshStore = () => openStore({ dir: fresh('store') });

// The layers of the test images: files, a hard link, an absolute symlink, whiteouts, an opaque dir, and a big incompressible file.
const big = randomBytes(3 << 20);
const L1 = tarOf([
  { path: './', type: 'Directory', mode: 0o755 },
  { path: './etc/', type: 'Directory', mode: 0o755 },
  { path: './etc/os-release', data: 'ID=pulled\n' },
  { path: './etc/localtime', type: 'SymbolicLink', linkpath: '/usr/share/zoneinfo/UTC' },
  { path: './old', data: 'deleted above\n' },
  { path: './cache/', type: 'Directory', mode: 0o755 },
  { path: './cache/stale', data: 'hidden by the opaque dir\n' },
  { path: './data', data: 'one' },
  { path: './data-link', type: 'Link', linkpath: './data' },
]);
const L2 = tarOf([
  { path: './.wh.old', data: '' },
  { path: './cache/', type: 'Directory', mode: 0o755 },
  { path: './cache/.wh..wh..opq', data: '' },
  { path: './cache/fresh', data: 'new\n' },
]);
const L3 = tarOf([{ path: './big', data: big }]);
const L4 = tarOf([{ path: './etc/app.conf', data: 'port=1\n' }]);
const config = { Env: ['PATH=/usr/bin:/bin', 'APP=1'], Cmd: ['sh'], WorkingDir: '/srv' };
// As image-fixtures compresses them.
const blobOf = (tar: Buffer) => sha(gzipSync(tar));

/** A layout whose one image is a multi-platform index (what skopeo copy --all pushes as one). */
function archIndex(dir: string, images: ImageSpec[]): void {
  const manifests = images.map((spec) => ({ ...writeImage(dir, spec), platform: { os: 'linux', architecture: spec.architecture ?? hostArch } }));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  const digest = sha(index);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), index);
  const entry = {
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest,
    size: index.length,
    annotations: { 'org.opencontainers.image.ref.name': 'v1' },
  };
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
}

/** What a sandbox sees of a layer stack mounted at /tmp/img. */
async function seen(store: LayerStore, name: string, script: string): Promise<string> {
  const result = await run('/bin/sh', ['-c', script], { workdir: 'none', overlays: [{ lower: await store.lowerDirs(name), target: '/tmp/img' }] });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** The CLI, run asynchronously: the registry's token server and the proxies answer from this process. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], { env: { ...process.env, DOCKER_CONFIG: join(root.path, 'no-docker-config'), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function proxy(upstream: string, options: Parameters<typeof startProxy>[1] = {}): Promise<TestProxy> {
  const p = await startProxy(upstream, options);
  proxies.push(p);
  return p;
}

/** A docker config directory holding `user:password` for `host`. */
function dockerConfig(host: string, user: string, password: string): string {
  const dir = fresh('docker');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return dir;
}

/** Nothing of a failed pull in the store: no layer, no tag, no staging dir. */
async function expectEmpty(store: LayerStore): Promise<void> {
  expect(await store.list()).toEqual([]);
  expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
}

const blobGets = (p: TestProxy) => p.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));

describe.skipIf(!!missing)(`pull from a local registry${missing ? ` (skipped: ${missing})` : ''}`, () => {
  beforeAll(async () => {
    root = tempDir('sandbox-run-pull-');
    const storage = join(root.path, 'storage');
    registry = await startRegistry(root.path, storage);
    ociLayout(fresh('multi'), [{ layers: [L1, L2, L3], config }], 'v1');
    pushLayout(join(root.path, `multi-${n}`), 'v1', `${registry.host}/public/multi:1`);
    pushLayout(join(root.path, `multi-${n}`), 'v1', `${registry.host}/private/multi:1`);
    ociLayout(fresh('multi'), [{ layers: [L1, L2, L3, L4], config }], 'v2');
    pushLayout(join(root.path, `multi-${n}`), 'v2', `${registry.host}/public/multi:2`);
    const other = hostArch === 's390x' ? 'ppc64le' : 's390x';
    const marker = (text: string) => tarOf([{ path: './arch', data: text }]);
    archIndex(fresh('arch'), [{ layers: [marker('other')], architecture: other }, { layers: [marker('host')] }]);
    pushLayout(join(root.path, `arch-${n}`), 'v1', `${registry.host}/public/arch:1`, { all: true });
    // The same storage behind token auth: public/ for anyone, everything for 'reader'.
    tokens = await startTokenServer(root.path, { reader: 'secret' }, (user, repo) => (repo.startsWith('public/') || user === 'reader' ? ['pull'] : []));
    secured = await startRegistry(root.path, storage, tokens);
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await secured?.stop();
    await tokens?.stop();
    await registry?.stop();
    root?.remove();
  });

  it('pulls a multi-layer image anonymously: whiteouts, opaque dirs, links and the image config, the same layers as import', async () => {
    const store = await freshStore();
    const ref = `${registry.host}/public/multi:1`;
    const result = await cli(['pull', ref, '--store', store.dir]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^pulled ${ref.replace(/[.]/g, '\\.')} sha256:[0-9a-f]{64} \\(`));
    expect(result.stdout.trim().split('\n')).toHaveLength(4);
    const top = await store.require(ref);
    expect(top.image).toMatchObject({ reference: ref, Env: config.Env, Cmd: ['sh'], WorkingDir: '/srv', platform: `linux/${hostArch}` });
    expect(await seen(store, ref, 'cd /tmp/img && ls -A | sort | tr "\\n" " "; ls cache; cat etc/os-release; readlink etc/localtime; cat data-link')).toBe(
      'big cache data data-link etc fresh\nID=pulled\n/usr/share/zoneinfo/UTC\none',
    );
    expect(await seen(store, ref, 'sha256sum < /tmp/img/big')).toBe(`${sha(big).slice('sha256:'.length)}  -`);
    // The same image imported from its layout is the same stack of layers.
    const imported = await freshStore();
    const [importedTop] = await imported.import(join(root.path, 'multi-1'));
    expect(importedTop!.digest).toBe(top.digest);
    // Nothing left in the download cache once the layers are in the store.
    expect(readdirSync(join(store.dir, 'downloads'))).toEqual([]);
  });

  it('shows one progress line per layer on a terminal (a pty from script), none when stderr is not one', async () => {
    const store = await freshStore();
    const ref = `${registry.host}/public/multi:1`;
    const command = [NODE, CLI, 'pull', ref, '--store', store.dir].map((arg) => `'${arg}'`).join(' ');
    const onPty = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.on('error', reject);
      child.on('close', (status) => (status === 0 ? resolve(out) : reject(new Error(`pull on a pty exited ${status}: ${out}`))));
    });
    for (const tar of [L1, L2, L3]) expect(onPty).toContain(`${blobOf(tar).slice('sha256:'.length, 'sha256:'.length + 12)}: extracted`);
    // The first frame (every layer waiting, the total) is drawn at once; redraws in place come at most every 100 ms, and last the final one.
    expect(onPty).toMatch(/: waiting [0-9.]+ [kM]?B\r?\n/);
    expect(onPty).toMatch(/\x1b\[4A\x1b\[J/);
    expect(onPty).toContain(`pulled ${ref} sha256:`);
  });

  it('takes the host platform from a multi-arch index, another with --platform', async () => {
    const store = await freshStore();
    const ref = `${registry.host}/public/arch:1`;
    const pulled = await store.pull(ref);
    expect(pulled.name).toBe(ref);
    expect(await seen(store, ref, 'cat /tmp/img/arch')).toBe('host');
    const other = hostArch === 's390x' ? 'ppc64le' : 's390x';
    await store.pull(ref, { platform: `linux/${other}`, name: 'arch:other' });
    expect(await seen(store, 'arch:other', 'cat /tmp/img/arch')).toBe('other');
    const error = (await store.pull(ref, { platform: 'linux/mips64le' }).catch((e: Error) => e)) as Error;
    expect(error.message).toMatch(/^refusing to pull .*: no image for linux\/mips64le in the index \(it has linux\/.*\): choose one with --platform$/);
  });

  it('pulls what our own export --format oci wrote and skopeo pushed: the same tree', async () => {
    const files = fresh('files');
    mkdirSync(join(files, 'bin'), { recursive: true });
    execFileSync('cp', ['/bin/sh', '/bin/ls', join(files, 'bin')]);
    writeFileSync(join(files, 'hello.txt'), 'hello from the host\n');
    const source = await freshStore();
    await source.snapshot(files, { name: 'tools' });
    const layout = fresh('own');
    expect((await cli(['export', 'tools', '--store', source.dir, '--format', 'oci', '-o', layout])).status).toBe(0);
    pushLayout(layout, 'tools', `${registry.host}/public/tools:1`);
    const store = await freshStore();
    await store.pull(`${registry.host}/public/tools:1`, { name: 'tools' });
    expect(treeDigest((await store.require('tools')).path)).toBe(treeDigest(files));
  });

  it('pulls with a bearer token: anonymous for a public repository, with docker config credentials for a private one', async () => {
    const store = await freshStore();
    await store.pull(`${secured.host}/public/multi:1`, { name: 'anon' });
    expect(tokens.requests.some((r) => r.user === undefined && r.scope === 'repository:public/multi:pull')).toBe(true);
    const config = dockerConfig(secured.host, 'reader', 'secret');
    const result = await cli(['pull', `${secured.host}/private/multi:1`, '--store', store.dir], { DOCKER_CONFIG: config });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(tokens.requests.some((r) => r.user === 'reader' && r.scope === 'repository:private/multi:pull')).toBe(true);
    expect((await store.require(`${secured.host}/private/multi:1`)).digest).toBe((await store.require('anon')).digest);
  });

  it('refuses wrong or missing credentials in one line that says what was tried and how to log in, leaving nothing', async () => {
    const store = await freshStore();
    const config = dockerConfig(secured.host, 'reader', 'wrong');
    const wrong = await cli(['pull', `${secured.host}/private/multi:1`, '--store', store.dir], { DOCKER_CONFIG: config });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toContain(
      `registry ${secured.host} refused access to private/multi with the credentials of 'reader' from ${join(config, 'config.json')}`,
    );
    expect(wrong.stderr).toContain(`docker login ${secured.host}`);
    const anonymous = await cli(['pull', `${secured.host}/private/multi:1`, '--store', store.dir]);
    expect(anonymous.status).toBe(2);
    expect(anonymous.stderr).toMatch(/refused access to private\/multi anonymously \(no credentials for 127\.0\.0\.1:\d+ in .*config\.json\)/);
    await expectEmpty(store);
  });

  it('says which image a registry does not have (404), and which registry it cannot reach', async () => {
    const store = await freshStore();
    const noRepo = await cli(['pull', `${registry.host}/public/nothing:1`, '--store', store.dir]);
    expect(noRepo.status).toBe(2);
    expect(noRepo.stderr).toMatch(new RegExp(`^sandbox-run: no image public/nothing:1 in registry ${registry.host} \\((NAME|MANIFEST)_UNKNOWN`));
    const noTag = await cli(['pull', `${registry.host}/public/multi:9`, '--store', store.dir]);
    expect(noTag.stderr).toMatch(new RegExp(`^sandbox-run: no image public/multi:9 in registry ${registry.host} \\(MANIFEST_UNKNOWN`));
    const closed = await proxy(registry.host);
    await closed.stop();
    const down = await cli(['pull', `${closed.host}/public/multi:1`, '--store', store.dir]);
    expect(down.status).toBe(125);
    expect(down.stderr).toMatch(new RegExp(`^sandbox-run: cannot pull ${closed.host}/public/multi:1: registry ${closed.host}: ECONNREFUSED`));
    // Bad input: refused before a store is even made.
    const nowhere = fresh('no-store');
    const bad = await cli(['pull', 'Upper/Case', '--store', nowhere]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^sandbox-run: invalid image reference 'Upper\/Case'/);
    const badPlatform = await cli(['pull', `${registry.host}/public/multi:1`, '--platform', 'linux', '--store', nowhere]);
    expect(badPlatform.status).toBe(2);
    expect(badPlatform.stderr).toMatch(/^sandbox-run: pull: bad platform 'linux': use OS\/ARCH\[\/VARIANT\]/);
    expect(existsSync(nowhere)).toBe(false);
    await expectEmpty(store);
  });

  it('does not download layers the store has: only the config and the new layer of a bigger image', async () => {
    const p = await proxy(registry.host);
    const store = await freshStore();
    await store.pull(`${p.host}/public/multi:1`);
    expect(blobGets(p)).toHaveLength(4); // config + 3 layers
    p.requests.length = 0;
    const again = await store.pull(`${p.host}/public/multi:2`);
    expect(again.present).toBe(3);
    expect(blobGets(p).map((r) => r.path.replace(/.*\/blobs\//, ''))).toEqual([expect.stringMatching(/^sha256:/), blobOf(L4)]);
    expect(await seen(store, `${p.host}/public/multi:2`, 'cat /tmp/img/etc/app.conf /tmp/img/cache/fresh')).toBe('port=1\nnew');
    p.requests.length = 0;
    const same = await store.pull(`${p.host}/public/multi:1`, { name: 'again' });
    expect(same.downloaded).toBe(0);
    expect(blobGets(p)).toHaveLength(1); // the config
  });

  it('two pulls of one image into one store at once: each blob fetched once, both tagged', async () => {
    const p = await proxy(registry.host);
    const store = await freshStore();
    const ref = `${p.host}/public/multi:1`;
    const [a, b] = await Promise.all([store.pull(ref), store.pull(ref, { name: 'twin' })]);
    expect(a.layers[0]!.digest).toBe(b.layers[0]!.digest);
    // The one that waited for a blob's lock found it in the cache (or the layer in the store) instead of fetching it again.
    for (const tar of [L1, L2, L3]) expect(blobGets(p).filter((r) => r.path.endsWith(blobOf(tar))).length).toBeLessThanOrEqual(1);
    expect((await store.require('twin')).digest).toBe((await store.require(ref)).digest);
    expect(readdirSync(join(store.dir, 'downloads'))).toEqual([]);
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
  });

  it('TLS: a registry on this machine is taken with its self-signed certificate; another host is verified unless --insecure or NODE_EXTRA_CA_CERTS', async (ctx) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    const tls = selfSigned('sandbox-run test registry', ['127.0.0.1', ...(external ? [external] : [])]);
    const local = await proxy(registry.host, { tls: { key: tls.key, cert: tls.certPem } });
    const store = await freshStore();
    await store.pull(`${local.host}/public/multi:1`, { name: 'over-tls' });
    expect(blobGets(local)).toHaveLength(4);
    if (!external) return ctx.skip('no non-loopback IPv4 address here to test certificate checks against');
    const remote = await proxy(registry.host, { tls: { key: tls.key, cert: tls.certPem }, host: external });
    const ref = `${remote.host}/public/multi:1`;
    const refused = await cli(['pull', ref, '--store', store.dir]);
    expect(refused.status).toBe(125);
    expect(refused.stderr).toMatch(new RegExp(`^sandbox-run: cannot pull ${ref}: registry ${remote.host}: .*self-signed certificate\n$`));
    expect((await cli(['pull', ref, '--store', store.dir, '--insecure'])).status).toBe(0);
    const certFile = join(fresh('ca'));
    writeFileSync(certFile, tls.certPem);
    expect((await cli(['pull', ref, '--store', store.dir, '--name', 'trusted'], { NODE_EXTRA_CA_CERTS: certFile })).stderr).toBe('');
    // A registry without TLS on another host: only with --plain-http, or --insecure (which falls back to it).
    const plain = await proxy(registry.host, { host: external });
    const plainRef = `${plain.host}/public/multi:1`;
    expect((await cli(['pull', plainRef, '--store', store.dir])).stderr).toMatch(
      new RegExp(`^sandbox-run: cannot pull ${plainRef}: registry ${plain.host}: EPROTO`),
    );
    expect((await cli(['pull', plainRef, '--store', store.dir, '--plain-http'])).status).toBe(0);
    expect((await cli(['pull', plainRef, '--store', store.dir, '--insecure', '--name', 'fallback'])).status).toBe(0);
    expect((await store.require('fallback')).digest).toBe((await store.require('over-tls')).digest);
  });

  it('follows a 307 to blob storage without sending it the registry credentials', async () => {
    const storage = await proxy(registry.host);
    const front = await proxy(secured.host);
    const auth: (string | undefined)[] = [];
    storage.rules.push((req, _res, forward) => {
      auth.push(req.headers.authorization);
      forward();
      return true;
    });
    front.rules.push((req, res) => {
      if (!req.url?.includes('/blobs/sha256:')) return false;
      res.writeHead(307, { location: `http://${storage.host}${req.url}?X-Amz-Signature=abc` });
      res.end();
      return true;
    });
    const store = await freshStore();
    const config = dockerConfig(front.host, 'reader', 'secret');
    await store.pull(`${front.host}/private/multi:1`, { dockerConfig: join(config, 'config.json') });
    expect(auth).toHaveLength(4);
    expect(auth.every((a) => a === undefined)).toBe(true);
    expect(await seen(store, `${front.host}/private/multi:1`, 'cat /tmp/img/etc/os-release')).toBe('ID=pulled');
  });

  it('resumes an interrupted download with a Range request; prune deletes a partial one', async () => {
    const p = await proxy(registry.host);
    const bigBlob = blobOf(L3);
    let cut = true;
    p.rules.push((req, _res, forward) => {
      if (!cut || !req.url?.endsWith(bigBlob)) return false;
      cut = false;
      forward((chunk, offset) => (offset + chunk.length > 1 << 20 ? 'cut' : chunk));
      return true;
    });
    const store = await freshStore();
    const ref = `${p.host}/public/multi:1`;
    const failed = await cli(['pull', ref, '--store', store.dir]);
    expect(failed.status).toBe(125);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    expect(failed.stderr).toMatch(
      new RegExp(
        `^sandbox-run: cannot pull ${ref}: registry ${p.host}: the download of layer 3 \\(${bigBlob}\\) broke off at byte \\d+ of \\d+: .*pull again to resume it`,
      ),
    );
    await expectEmpty(store);
    const partial = join(store.dir, 'downloads', `${bigBlob.slice('sha256:'.length)}.partial`);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(1 << 20);
    p.requests.length = 0;
    const resumed = await cli(['pull', ref, '--store', store.dir]);
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(p.requests.find((r) => r.path.endsWith(bigBlob))?.range).toBe(`bytes=${kept}-`);
    expect(await seen(store, ref, 'wc -c < /tmp/img/big')).toBe(String(big.length));
    expect(existsSync(partial)).toBe(false);

    // A partial download left behind is a leftover prune deletes.
    cut = true;
    const other = await freshStore();
    expect((await cli(['pull', ref, '--store', other.dir])).status).toBe(125);
    expect(existsSync(join(other.dir, 'downloads', `${bigBlob.slice('sha256:'.length)}.partial`))).toBe(true);
    const pruned = await cli(['prune', '--store', other.dir]);
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toContain('.partial');
    expect(readdirSync(join(other.dir, 'downloads'))).toEqual([]);
  });

  it('refuses a blob whose content does not match its digest, leaving nothing in the store or the cache', async () => {
    const p = await proxy(registry.host);
    const target = blobOf(L2);
    p.rules.push((req, _res, forward) => {
      if (!req.url?.endsWith(target)) return false;
      forward((chunk, offset) => {
        const copy = Buffer.from(chunk);
        if (offset === 0) copy[copy.length - 1] = (copy[copy.length - 1]! + 1) & 0xff;
        return copy;
      });
      return true;
    });
    const store = await freshStore();
    const result = await cli(['pull', `${p.host}/public/multi:1`, '--store', store.dir]);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`digest mismatch: layer 2 (${target}) from ${p.host} should be ${target}, its content is sha256:`);
    await expectEmpty(store);
    expect(readdirSync(join(store.dir, 'downloads')).filter((name) => name.startsWith(target.slice('sha256:'.length)))).toEqual([]);
  });
});
