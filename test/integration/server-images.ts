// Server images built from the host's own packages, never from the
// internet: the server binaries with exactly the libraries ldd names, their
// share files, busybox as /bin/sh and a minimal /etc, written as one-layer
// OCI layouts (image-fixtures.ts) and imported, so Env/Cmd/ExposedPorts go
// through import as a pulled image's do.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LayerStore } from '../../src/layers/store.js';
import { ociLayout } from './image-fixtures.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'id', 'echo', 'mkdir', 'rm', 'sed', 'awk', 'uname', 'dirname', 'basename', 'chmod', 'chown', 'find', 'hostname'];
const APPLETS_MORE = ['test', 'env', 'sleep', 'tr', 'cut', 'grep', 'head', 'tail', 'touch', 'wc', 'cp', 'mv', 'ln', 'pwd', 'true', 'false', 'expr'];

/** Busybox as /bin/sh (services start through it) and a root-only /etc. */
function baseTree(dir: string): void {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static (.ci/run installs it)`);
  for (const sub of ['bin', 'etc', 'tmp', 'usr/bin', 'usr/sbin']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  for (const applet of [...APPLETS, ...APPLETS_MORE]) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
}

/** A host file at the same path under `dir` (links followed: ldd names /lib/... links into /usr/lib). */
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

function withBinaries(dir: string, binaries: readonly string[]): void {
  baseTree(dir);
  for (const file of binaries) copyHostFile(dir, file);
  for (const lib of new Set(binaries.flatMap(libraries))) copyHostFile(dir, lib);
}

async function importTree(store: LayerStore, work: string, tree: string, ref: string, config: Record<string, unknown>): Promise<string> {
  const tar = execFileSync('tar', ['-C', tree, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const layout = ociLayout(join(work, `${ref.replace(/[:/]/g, '_')}-oci`), [{ layers: [tar], compression: 'none', config }], ref);
  await store.importImage(layout, { name: ref });
  return ref;
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** redis-server and redis-cli from the host, Cmd and ExposedPorts as the official image has them. */
export function redisImage(store: LayerStore, work: string, ref = 'redis:host-test'): Promise<string> {
  const tree = join(work, 'redis-tree');
  withBinaries(tree, ['/usr/bin/redis-server', '/usr/bin/redis-cli']);
  return importTree(store, work, tree, ref, { Env: [PATH], Cmd: ['redis-server'], ExposedPorts: { '6379/tcp': {} }, WorkingDir: '/data' });
}

/** mariadbd, mariadb-install-db (a shell script), my_print_defaults, the mariadb client and /usr/share/mysql from the host. */
export function mariadbImage(store: LayerStore, work: string, ref = 'mariadb:host-test'): Promise<string> {
  const tree = join(work, 'mariadb-tree');
  withBinaries(tree, ['/usr/sbin/mariadbd', '/usr/bin/my_print_defaults', '/usr/bin/mariadb']);
  copyHostFile(tree, '/usr/bin/mariadb-install-db');
  copyHostTree(tree, '/usr/share/mysql');
  return importTree(store, work, tree, ref, { Env: [PATH], Cmd: ['mariadbd'], ExposedPorts: { '3306/tcp': {} } });
}

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** PostgreSQL 15 from the host with the tools the preset uses, its share dir, zoneinfo; PATH and PG_MAJOR as the official image sets them. */
export function postgresImage(store: LayerStore, work: string, ref = 'postgres:host-test'): Promise<string> {
  const tree = join(work, 'postgres-tree');
  const tools = ['initdb', 'postgres', 'psql', 'createdb', 'vacuumdb', 'pg_isready'].map((name) => join(PG_BIN, name));
  const modules = ['plpgsql.so', 'dict_snowball.so'].map((name) => join(dirname(PG_BIN), 'lib', name));
  withBinaries(tree, [...tools, ...modules]);
  copyHostTree(tree, '/usr/share/postgresql/15');
  copyHostTree(tree, '/usr/share/zoneinfo');
  if (existsSync('/usr/lib/locale/C.utf8')) copyHostTree(tree, '/usr/lib/locale/C.utf8');
  return importTree(store, work, tree, ref, {
    Env: [`PATH=${PG_BIN}:/usr/bin:/bin`, 'PG_MAJOR=15', 'LANG=C.UTF-8'],
    Cmd: ['postgres'],
    ExposedPorts: { '5432/tcp': {} },
  });
}
