// Images built from the host's own files, never from the internet: a
// busybox-static tree, and the host's PostgreSQL 15 with exactly the
// libraries ldd names. Each is written as an OCI layout (image-fixtures.ts)
// and imported, so the image config (Env, WorkingDir) goes through import too.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LayerStore } from '../../src/layers/store.js';
import { ociLayout } from './image-fixtures.js';

export const BUSYBOX = '/usr/bin/busybox';
export const PG_BIN = '/usr/lib/postgresql/15/bin';
const APPLETS = ['sh', 'ls', 'cat', 'id', 'echo', 'pwd', 'touch', 'mkdir', 'rm', 'grep', 'wc', 'test', 'env', 'readlink', 'stat', 'nc', 'sleep', 'true'];

/** Busybox and its applets in bin/ (relative links), a root-only /etc/passwd and a marker. */
function busyboxTree(dir: string, marker: string): void {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static (.ci/run installs it)`);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  for (const applet of APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\npostgres:x:999:\n');
  writeFileSync(join(dir, 'etc/image-marker'), marker);
}

/** Copies a host file to the same path under `dir`, following links (ldd names /lib/... links into /usr/lib). */
function copyHostFile(dir: string, path: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  copyFileSync(path, join(dir, path));
}

function copyHostTree(dir: string, path: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  execFileSync('cp', ['-a', path, join(dir, path)]);
}

/** The libraries a binary loads, as ldd resolves them here (the dynamic loader included). */
function libraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+)/g)].map((m) => m[1]!).filter((path) => existsSync(path));
}

/** PostgreSQL 15 from the host: initdb, postgres, pg_ctl, psql, their libraries, the share dir, a locale, zoneinfo. */
function postgresTree(dir: string): void {
  busyboxTree(dir, 'postgres image\n');
  const binaries = ['initdb', 'postgres', 'pg_ctl', 'psql', 'pg_isready'].map((name) => join(PG_BIN, name));
  // initdb loads these two; the other modules stay out.
  const modules = ['plpgsql.so', 'dict_snowball.so'].map((name) => join(dirname(PG_BIN), 'lib', name));
  for (const file of [...binaries, ...modules]) copyHostFile(dir, file);
  for (const lib of new Set([...binaries, ...modules].flatMap(libraries))) copyHostFile(dir, lib);
  copyHostTree(dir, '/usr/share/postgresql/15');
  copyHostTree(dir, '/usr/share/zoneinfo');
  if (existsSync('/usr/lib/locale/C.utf8')) copyHostTree(dir, '/usr/lib/locale/C.utf8');
  mkdirSync(join(dir, 'var/lib/postgresql'), { recursive: true });
}

/** A tar of a directory's contents (paths as ./...), as one image layer. */
function tarOfDir(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
}

/** Writes `tree` as a one-layer OCI image named `ref` with `config` and imports it into `store`. */
async function importTree(store: LayerStore, work: string, tree: string, ref: string, config: Record<string, unknown>): Promise<void> {
  const layout = ociLayout(join(work, `${ref.replace(/[:/]/g, '_')}-oci`), [{ layers: [tarOfDir(tree)], compression: 'none', config }], ref);
  await store.importImage(layout, { name: ref });
}

export const BUSYBOX_CONFIG = {
  Env: ['PATH=/bin', 'IMAGE_VAR=from-image', 'SHARED=image'],
  WorkingDir: '/srv/app',
  Entrypoint: ['sh', '-c'],
  Cmd: ['echo "Cmd of the image: $IMAGE_VAR"'],
};
export const POSTGRES_CONFIG = { Env: [`PATH=${PG_BIN}:/bin`, 'LANG=C.UTF-8', 'TZ=UTC'], WorkingDir: '/var/lib/postgresql' };

/** Builds both images in `work` and imports them as `busybox:test` and `postgres:15-test`. */
export async function importTestImages(store: LayerStore, work: string): Promise<{ busybox: string; postgres: string }> {
  const bb = join(work, 'busybox-tree');
  busyboxTree(bb, 'busybox image\n');
  await importTree(store, work, bb, 'busybox:test', BUSYBOX_CONFIG);
  const pg = join(work, 'postgres-tree');
  postgresTree(pg);
  await importTree(store, work, pg, 'postgres:15-test', POSTGRES_CONFIG);
  return { busybox: 'busybox:test', postgres: 'postgres:15-test' };
}

/** The passwd line for `uid` in a passwd file's text. */
export function passwdEntry(text: string, uid: number): string[] | undefined {
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[2] === String(uid));
}

export const readText = (path: string) => readFileSync(path, 'utf8');
