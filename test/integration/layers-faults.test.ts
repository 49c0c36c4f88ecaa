// Layer store faults: a corrupt store entry is detected and never mounted;
// a full disk fails cleanly and leaves no partial layer.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type LayerStore, openStore, run, SandboxError } from '../../src/index.js';
import { CLI, NODE, ROOT, tempDir } from './support.js';

const exec = promisify(execFile);

let root: { path: string; remove: () => void };
beforeAll(() => {
  root = tempDir('sandbox-run-faults-');
});
afterAll(() => root.remove());

let counter = 0;
function fresh(name: string): string {
  const dir = join(root.path, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function sample(): string {
  const dir = fresh('sample');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'sub/b.txt'), 'bbbb\n');
  return dir;
}

/** A store holding `base` and its child `child` (both snapshots: no sandbox needed to make them). */
async function stack(): Promise<{ store: LayerStore; base: string; child: string }> {
  const store = await openStore({ dir: fresh('store') });
  const base = await store.snapshot(sample(), { name: 'base' });
  const childDir = fresh('child');
  writeFileSync(join(childDir, 'c.txt'), 'c\n');
  const child = await store.snapshot(childDir, { name: 'child', parent: 'base' });
  return { store, base: base.digest.slice(7), child: child.digest.slice(7) };
}

const layerDir = (store: LayerStore, hex: string) => join(store.dir, 'layers', hex);

/** What lowerDirs throws (it must throw). */
async function mountError(store: LayerStore, name: string): Promise<SandboxError> {
  const error = await store.lowerDirs(name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SandboxError);
  expect((error as SandboxError).code).toBe('CORRUPT_LAYER');
  expect((error as SandboxError).message).not.toContain('\n');
  return error as SandboxError;
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  exec(NODE, [CLI, ...args], { env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

describe('a corrupt store entry', () => {
  it('is reported for every kind of tampering, naming the layer, the path and what to do', async () => {
    const cases: [string, (store: LayerStore, hex: string) => void, RegExp][] = [
      [
        'content changed, size and mtime kept',
        (store, hex) => {
          const file = join(layerDir(store, hex), 'tree/sub/b.txt');
          const { atime, mtime } = statSync(file);
          writeFileSync(file, 'BBBB\n');
          utimesSync(file, atime, mtime);
        },
        /tree\/sub\/b\.txt changed after commit/,
      ],
      ['mode changed', (store, hex) => chmodSync(join(layerDir(store, hex), 'tree/a.txt'), 0o666), /tree\/a\.txt changed after commit/],
      ['file added', (store, hex) => writeFileSync(join(layerDir(store, hex), 'tree/sub/new'), 'x'), /tree\/sub\/new was added after commit/],
      ['file removed', (store, hex) => rmSync(join(layerDir(store, hex), 'tree/a.txt')), /tree\/a\.txt was removed after commit/],
      ['meta.json missing', (store, hex) => rmSync(join(layerDir(store, hex), 'meta.json')), /meta\.json is missing/],
      ['meta.json unparsable', (store, hex) => writeFileSync(join(layerDir(store, hex), 'meta.json'), '{"digest": '), /meta\.json is not valid JSON/],
      [
        'meta.json names another digest',
        (store, hex) => {
          const file = join(layerDir(store, hex), 'meta.json');
          writeFileSync(file, readFileSync(file, 'utf8').replace(hex, 'f'.repeat(64)));
        },
        /meta\.json says sha256:f{64}, not the digest its directory is named after/,
      ],
      [
        'meta.json edited, still valid',
        (store, hex) => {
          const file = join(layerDir(store, hex), 'meta.json');
          writeFileSync(file, readFileSync(file, 'utf8').replace(/"size": \d+/, '"size": 1'));
        },
        /meta\.json changed after commit/,
      ],
      ['tree missing', (store, hex) => rmSync(join(layerDir(store, hex), 'tree'), { recursive: true }), /tree\/ is missing/],
      [
        'tree not a directory',
        (store, hex) => {
          rmSync(join(layerDir(store, hex), 'tree'), { recursive: true });
          writeFileSync(join(layerDir(store, hex), 'tree'), '');
        },
        /tree is not a directory/,
      ],
    ];
    for (const [what, tamper, reason] of cases) {
      const { store, base } = await stack();
      tamper(store, base);
      const error = await mountError(store, 'base');
      expect(error.message, what).toMatch(reason);
      expect(error.message, what).toMatch(
        new RegExp(
          `^layer base \\(sha256:${base.slice(0, 12)}…\\) is corrupt: .*; ` +
            'run `sandbox-run verify base` or remove it with `sandbox-run rm base` and rebuild$',
        ),
      );
      // The child mounts the same parent: refused too, naming the parent.
      expect((await mountError(store, 'child')).message, what).toMatch(/^layer base \(sha256:[0-9a-f]{12}…\) is corrupt: /);
    }
  });

  it('a missing parent makes the child corrupt', async () => {
    const { store, base } = await stack();
    rmSync(layerDir(store, base), { recursive: true });
    expect((await mountError(store, 'child')).message).toMatch(
      new RegExp(`^layer child \\(sha256:[0-9a-f]{12}…\\) is corrupt: its parent sha256:${base} is missing;`),
    );
  });

  it('an intact layer mounts, once checked per process; the check is cheap and notices a later rewrite of meta.json', async () => {
    const { store, base, child } = await stack();
    expect(await store.lowerDirs('child')).toEqual([join(layerDir(store, child), 'tree'), join(layerDir(store, base), 'tree')]);
    expect(existsSync(join(layerDir(store, base), 'seal'))).toBe(true);
    const result = await run('/bin/cat', ['/tmp/l/sub/b.txt', '/tmp/l/c.txt'], {
      workdir: 'none',
      overlays: [{ lower: await store.lowerDirs('child'), target: '/tmp/l' }],
    });
    expect(result.stdout).toBe('bbbb\nc');
    const meta = join(layerDir(store, base), 'meta.json');
    writeFileSync(meta, readFileSync(meta, 'utf8').replace(/"size": \d+/, '"size": 2'));
    expect((await mountError(store, 'child')).message).toMatch(/meta\.json changed after commit/);
  });

  it('never reaches a sandbox: pool and CLI build fail with the one line (CLI: exit 125) and nothing runs', async () => {
    const { store, base } = await stack();
    chmodSync(join(layerDir(store, base), 'tree/a.txt'), 0o604);
    const poolError = await createPool({ size: 1, layers: [{ layer: 'base', target: '/tmp/l' }], store }).then(
      async (pool) => {
        await pool.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect((poolError as SandboxError).code).toBe('CORRUPT_LAYER');
    expect((poolError as Error).message).toMatch(/^layer base \(.*\) is corrupt: tree\/a\.txt changed after commit;/);

    const marker = join(fresh('marker'), 'ran');
    const built = await cli([
      'build',
      '--store',
      store.dir,
      '--name',
      'on-top',
      '--parent',
      'child',
      '--mount',
      '/tmp/l',
      '--',
      '/bin/sh',
      '-c',
      `echo > /tmp/l/x; echo ran > ${marker}`,
    ]);
    expect(built.code).toBe(125);
    expect(built.stderr).toMatch(
      new RegExp(
        [
          /^sandbox-run: layer base \(sha256:[0-9a-f]{12}…\) is corrupt: tree\/a\.txt changed after commit; /.source,
          /run `sandbox-run verify sha256:[0-9a-f]{64}` or remove it with `sandbox-run rm sha256:[0-9a-f]{64}` and rebuild\n$/.source,
        ].join(''),
      ),
    );
    expect(existsSync(marker)).toBe(false);
    expect((await store.list()).map((info) => info.names)).toEqual([['child'], ['base']]);
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([]);
  });

  it('verify: ok, corrupt (exit 1) and resealed after a copy with cp -a; layers shows it; rm and prune remove corrupt layers', async () => {
    const { store, base } = await stack();
    let out = await cli(['verify', '--store', store.dir]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^ok child sha256:[0-9a-f]{64}\nok base sha256:[0-9a-f]{64}\n$/);

    // A copy keeps mtimes but not ctimes: every seal is stale, the content intact.
    const copy = join(fresh('copy'), 'store');
    await exec('cp', ['-a', store.dir, copy]);
    out = await cli(['verify', 'child', '--store', copy]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^resealed child sha256:\S+: .*but its content is intact\nresealed base sha256:\S+: .*but its content is intact\n$/);
    // A second copy is not verified by hand: mounting it verifies and reseals it (a restored CI cache just works).
    const second = join(fresh('copy'), 'store');
    await exec('cp', ['-a', store.dir, second]);
    const restored = await openStore({ dir: second });
    expect(await restored.lowerDirs('child')).toHaveLength(2);
    expect((await cli(['verify', '--store', second])).stdout).toMatch(/^ok child sha256:[0-9a-f]{64}\nok base sha256:[0-9a-f]{64}\n$/);

    // Same size, same mtime, other bytes: only the digest can tell what, the seal where.
    const file = join(layerDir(store, base), 'tree/a.txt');
    const { atime, mtime } = statSync(file);
    writeFileSync(file, 'A\n');
    utimesSync(file, atime, mtime);
    out = await cli(['verify', 'base', '--store', store.dir]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(
      new RegExp(`^corrupt base sha256:${base}: tree/a\\.txt changed after commit: its content digest is now sha256:[0-9a-f]{64}\\n$`),
    );

    const listed = await cli(['layers', '--store', store.dir]);
    expect(listed.stdout).toMatch(/^NAME +DIGEST +SIZE +PARENT +CREATED +STATUS\n/);
    expect(listed.stdout).toMatch(/\nbase +[0-9a-f]{12} .* corrupt: tree\/a\.txt changed after commit\n/);
    expect(listed.stdout).toMatch(/\nchild +[0-9a-f]{12} .* ok\n/);
    const inspected = await cli(['inspect', 'base', '--store', store.dir]);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ names: ['base'], corrupt: 'tree/a.txt changed after commit' });

    // Broken meta.json: still listed, inspect says so, and rm removes it.
    rmSync(join(layerDir(store, base), 'meta.json'));
    expect((await store.list()).find((info) => info.digest === `sha256:${base}`)).toMatchObject({ names: ['base'], corrupt: 'meta.json is missing' });
    const broken = await cli(['inspect', 'base', '--store', store.dir]);
    expect(broken.code).toBe(125);
    expect(broken.stderr).toMatch(/^sandbox-run: layer base \(.*\) is corrupt: meta\.json is missing; /);
    expect((await cli(['rm', 'child', '--store', store.dir])).code).toBe(0);
    expect((await cli(['rm', 'base', '--store', store.dir])).stdout).toMatch(`deleted: sha256:${base}`);
    expect(readdirSync(join(store.dir, 'layers'))).toEqual([]);

    // prune: an untagged corrupt layer goes like any other.
    const other = await store.snapshot(sample(), { name: 'other' });
    writeFileSync(join(other.path, 'added'), '');
    await store.remove('other');
    expect(readdirSync(join(store.dir, 'layers'))).toEqual([]);
    const again = await store.snapshot(sample(), { name: 'again' });
    await store.tag('again', again.digest);
    rmSync(join(layerDir(store, again.digest.slice(7)), 'tree'), { recursive: true });
    await store.remove('again');
    expect(readdirSync(join(store.dir, 'layers'))).toEqual([]);
  });

  it('a layer committed before seals existed is verified once in full, then sealed; a changed one is refused', async () => {
    const { store, base, child } = await stack();
    for (const hex of [base, child]) rmSync(join(layerDir(store, hex), 'seal'));
    expect(await store.lowerDirs('child')).toHaveLength(2);
    expect(existsSync(join(layerDir(store, base), 'seal'))).toBe(true);

    const other = await stack();
    rmSync(join(layerDir(other.store, other.base), 'seal'));
    writeFileSync(join(layerDir(other.store, other.base), 'tree/a.txt'), 'changed\n');
    expect((await mountError(other.store, 'base')).message).toMatch(/is corrupt: its content digest is now sha256:/);
    expect(existsSync(join(layerDir(other.store, other.base), 'seal'))).toBe(false);
  });

  it('committing the same content again replaces a corrupt copy; a corrupt cached build is built again; export refuses it', async () => {
    const { store, base } = await stack();
    rmSync(join(layerDir(store, base), 'tree/a.txt'));
    await mountError(store, 'base');
    await expect(store.export('child', join(fresh('export'), 'x.tar'))).rejects.toThrow(
      /^layer base \(.*\) is corrupt: tree\/a\.txt was removed after commit;/,
    );
    const again = await store.snapshot(sample(), { name: 'base2' });
    expect(again.digest).toBe(`sha256:${base}`);
    expect(await store.lowerDirs('child')).toHaveLength(2);

    const recipe = { name: 'built', mountPoint: '/tmp/l', run: ['/bin/sh', '-c', 'echo built > /tmp/l/out'] };
    const built = await store.build(recipe);
    writeFileSync(join(built.path, 'out'), 'tampered\n');
    const rebuilt = await store.build(recipe);
    expect(rebuilt.digest).toBe(built.digest);
    expect(rebuilt.created > built.created).toBe(true);
    expect(readFileSync(join(rebuilt.path, 'out'), 'utf8')).toBe('built\n');
  });
});

describe('a layer store on a full disk', () => {
  // (A build cannot be tried here: its sandbox would nest in this one, which the kernel refuses to mount /proc for.)
  it('snapshot and import fail with one line, keep nothing, and the next small snapshot works', async () => {
    const work = fresh('full');
    mkdirSync(join(work, 'big/sub'), { recursive: true });
    for (let i = 0; i < 6; i++) writeFileSync(join(work, `big/sub/part-${i}`), randomBytes(2 << 20));
    mkdirSync(join(work, 'small'));
    writeFileSync(join(work, 'small/hello'), 'hello\n');
    // An archive too big for the small disk, made in a store on the host.
    const host = await openStore({ dir: fresh('host-store') });
    await host.snapshot(join(work, 'big'), { name: 'big' });
    await host.export('big', join(work, 'big.tar'));

    const S = '/tmp/store';
    const script = `
      cli() { c=$1; shift; "$NODE" "$CLI" "$c" --store ${S} "$@"; }
      step() {
        name=$1; shift; err=$(cli "$@" 2>&1 >/dev/null); echo "$name exit=$? err=$err"
        echo "$name layers=$(cli layers | tail -n +2 | awk '{print $1}' | tr '\\n' ,)"
        echo "$name tmp=$(ls -A ${S}/tmp | tr '\\n' ,)"; echo "$name store=$(ls -A ${S} | tr '\\n' ,)"
      }
      step first snapshot small --name first
      step snapshot snapshot big --name big
      step import import big.tar
      step small snapshot small --name small
    `;
    const result = await run('/bin/sh', ['-c', script], {
      cwd: work,
      workdir: 'ro',
      tmpfsSize: 8 << 20,
      // The checkout may itself be under /tmp, which the sandbox's fresh tmpfs hides.
      binds: [{ source: ROOT, readonly: true }],
      env: { NODE, CLI },
    });
    expect(result.stderr).toBe('');
    const line = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(result.stdout)?.[1];
    const full = `no space left on ${S} while writing a layer: free space (sandbox-run prune) or use --store on a bigger disk`;
    expect(line('first exit')).toBe('0 err=');
    for (const step of ['snapshot', 'import']) {
      expect(line(`${step} exit`), result.stdout).toBe(`125 err=sandbox-run: ${full}`);
      expect(line(`${step} layers`), step).toBe('first,');
      expect(line(`${step} tmp`), step).toBe('');
      expect(line(`${step} store`), step).toBe('VERSION,builds,layers,leases,locks,tags.json,tmp,');
    }
    expect(line('small exit')).toBe('0 err=');
    expect(line('small layers')).toMatch(/^(first,small,|small,first,)$/);
  });
});
