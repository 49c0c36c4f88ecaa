import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { SandboxError } from '../../errors.js';
import { findInImage, type PresetImage } from '../common/image.js';

/** The server, what initialises its data directory, its client, and what `--version` says (part of the cache key). */
export interface MariadbBinaries {
  /** MariaDB, or Oracle's MySQL (which initialises with `mysqld --initialize-insecure`). */
  flavor: 'mariadb' | 'mysql';
  server: string;
  /** mariadb-install-db (MariaDB); undefined for MySQL. */
  installDb: string | undefined;
  /** --basedir for mariadb-install-db when the server is not where it was built to be (an explicit `bin`). */
  basedir: string | undefined;
  client: string;
  version: string;
  /** Where the image is mounted when they are an image's: the server and its tools run chrooted there. */
  root?: string;
}

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Beside `near` (a server in sbin, its tools in bin), then PATH and the usual places. */
function find(names: readonly string[], near?: string): string | undefined {
  const nearby = near ? [dirname(near), join(dirname(near), '../bin')] : [];
  const dirs = [
    ...nearby,
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
    '/usr/sbin',
    '/usr/bin',
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/libexec',
  ];
  for (const name of names) for (const dir of dirs) if (executable(join(dir, name))) return join(dir, name);
  return undefined;
}

const INSTALL = 'install it (apt-get install mariadb-server, dnf install mariadb-server), set bin, or run it from an image (image: "mariadb:11")';

/** Finds mariadbd (or mysqld), the data directory initialiser and the client, or says how to install them. */
export function findMariadbBinaries(preset: string, bin?: string): MariadbBinaries {
  if (bin !== undefined && !executable(bin)) throw new SandboxError('SETUP_FAILED', `${preset} preset: bin ${bin} is not an executable file`);
  const server = bin ?? find(['mariadbd', 'mysqld']);
  if (!server) throw new SandboxError('SETUP_FAILED', `${preset} preset: mariadbd (or mysqld) not found: ${INSTALL}`);
  const version = execFileSync(server, ['--no-defaults', '--version'], { encoding: 'utf8' }).trim();
  const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  const installDb = flavor === 'mariadb' ? find(['mariadb-install-db', 'mysql_install_db'], server) : undefined;
  if (flavor === 'mariadb' && !installDb)
    throw new SandboxError('SETUP_FAILED', `${preset} preset: mariadb-install-db not found beside ${server} or on PATH; ${INSTALL}`);
  const client = find(flavor === 'mariadb' ? ['mariadb', 'mysql'] : ['mysql'], server);
  if (!client) throw new SandboxError('SETUP_FAILED', `${preset} preset: the ${flavor === 'mariadb' ? 'mariadb' : 'mysql'} client not found; ${INSTALL}`);
  return { flavor, server, installDb, basedir: bin ? dirname(dirname(bin)) : undefined, client, version };
}

/** mariadbd (or mysqld), mariadb-install-db and the client on the image's PATH; the image's digest stands for the version. */
export function findMariadbBinariesInImage(preset: string, image: PresetImage): MariadbBinaries {
  const server = findInImage(image, ['mariadbd', 'mysqld']);
  if (!server)
    throw new SandboxError('SETUP_FAILED', `${preset} preset: image ${image.ref} has no mariadbd or mysqld on its PATH; use a MariaDB or MySQL image`);
  const installDb = findInImage(image, ['mariadb-install-db', 'mysql_install_db']);
  const flavor = installDb || server.endsWith('/mariadbd') ? 'mariadb' : 'mysql';
  if (flavor === 'mariadb' && !installDb) throw new SandboxError('SETUP_FAILED', `${preset} preset: image ${image.ref} has no mariadb-install-db on its PATH`);
  const client = findInImage(image, flavor === 'mariadb' ? ['mariadb', 'mysql'] : ['mysql']);
  if (!client)
    throw new SandboxError('SETUP_FAILED', `${preset} preset: image ${image.ref} has no ${flavor === 'mariadb' ? 'mariadb' : 'mysql'} client on its PATH`);
  return { flavor, server, installDb, basedir: undefined, client, version: `image ${image.ref} ${image.digest}`, root: image.at };
}
