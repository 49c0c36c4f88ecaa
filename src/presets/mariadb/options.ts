import { SandboxError } from '../../errors.js';
import type { LayerStore } from '../../layers/index.js';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** The seed of the database: SQL files, a shell command, or a function; any combination, in that order. */
export interface MariadbSeed {
  /** SQL files, run in order as root in `database` (mariadb client, stops at the first error); relative paths resolve against `baseDir`. */
  sql?: readonly string[];
  /** A shell command run with DATABASE_URL and MYSQL_* set in `baseDir`, e.g. 'npx knex migrate:latest'. */
  command?: string;
  /** A function given the live build sandbox (its env has DATABASE_URL); its source is part of the cache key. */
  run?: (sandbox: Sandbox) => Promise<void>;
  /** Files, directories or globs whose content invalidates the cached database (for `command` and `run`). */
  inputs?: readonly string[];
}

export interface MariadbOptions {
  seed?: MariadbSeed;
  /** Database created and named in DATABASE_URL (default 'app'). */
  database?: string;
  /** Who DATABASE_URL logs in as (default 'root'); another name is created with all privileges on `database`. */
  user?: string;
  /** That user's password (default none); with user 'root' it is root's. */
  password?: string;
  /** root's password when `user` is another (default none: root logs in without one, over the socket and TCP). */
  rootPassword?: string;
  /** Port inside each sandbox (default 3306: every sandbox has its own loopback). */
  port?: number;
  /** More server options (my.cnf's [mysqld] names), e.g. { 'sql-mode': 'ANSI', 'max-connections': 500 }. */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** Path of the server binary (mariadbd or mysqld); default: mariadbd, else mysqld, on PATH or in /usr/sbin. */
  bin?: string;
  /** Run the server from this image in the layer store (`sandbox-run pull mariadb:11`), not from the host: its mariadbd, mariadb-install-db and client. */
  image?: string;
  /** Variables the preset must not export, e.g. ['DATABASE_URL']. */
  omitEnv?: readonly string[];
  /** How long the server may take to start (default 60 s). */
  startTimeoutMs?: number;
  /** Tag of the seeded layer in the store (default `<project>-<hash>/mariadb-<database>`). */
  layer?: string;
  /** Layer store for the seeded database (default: the one in $SANDBOX_RUN_HOME). */
  store?: LayerStore;
  /** Where relative paths (seed files, inputs) resolve and seed.command runs; default: the config file's directory, else the current one. */
  baseDir?: string;
}

/**
 * Settings for a disposable test server: no durability, small memory, no
 * DNS. Where tests can notice, MariaDB's own defaults stay (sql_mode,
 * max_connections 151); the character set is utf8mb4, as Debian's and
 * MariaDB's own packages (and the official image) configure it.
 */
export const TEST_SETTINGS: Readonly<Record<string, string | number>> = {
  'character-set-server': 'utf8mb4',
  'collation-server': 'utf8mb4_general_ci',
  'skip-name-resolve': 1,
  'innodb-buffer-pool-size': '16M',
  'innodb-log-file-size': '8M',
  // Temporary tables grow ibtmp1 by innodb_autoextend_increment (64 MB): in each sandbox's memory.
  'innodb-temp-data-file-path': 'ibtmp1:1M:autoextend',
  'innodb-autoextend-increment': 4,
  'innodb-flush-log-at-trx-commit': 0,
  'innodb-doublewrite': 0,
  'innodb-flush-method': 'fsync',
  // io_uring and libaio are often refused in containers and namespaces.
  'innodb-use-native-aio': 0,
  'innodb-buffer-pool-dump-at-shutdown': 0,
  'innodb-buffer-pool-load-at-startup': 0,
};

/** Options the preset sets itself: a value in `settings` would be overridden or break the layout. */
const OWNED: Readonly<Record<string, string>> = {
  port: "use the preset's `port` option",
  'bind-address': 'the server listens on 127.0.0.1 in each sandbox (its own loopback)',
  'skip-networking': 'the server listens on 127.0.0.1 in each sandbox (its own loopback)',
  socket: 'the preset puts the socket in a directory shared with the host',
  datadir: 'the database lives in the layer',
  user: 'the server runs as the sandbox user',
  'pid-file': 'the preset keeps it on the sandbox /tmp',
};

const IDENTIFIER = /^[A-Za-z_][\w$]{0,63}$/;

function bad(preset: string, message: string): never {
  throw new SandboxError('BAD_OPTIONS', `${preset} preset: ${message}`);
}

/** Normalised option name: my.cnf accepts '-' and '_' alike. */
export const optionName = (name: string): string => name.toLowerCase().replace(/_/g, '-');

/** Refuses what the server would ignore or fail on later, with one line saying what to do. */
export function checkMariadbOptions(preset: string, options: MariadbOptions): void {
  for (const key of Object.keys(options.settings ?? {})) {
    const why = OWNED[optionName(key)];
    if (why) bad(preset, `settings.${key} is set by the preset (${why}); remove it`);
    if (!/^[A-Za-z][\w-]*$/.test(key)) bad(preset, `settings.${key} is not an option name`);
  }
  for (const name of [options.user, options.database])
    if (name !== undefined && !IDENTIFIER.test(name)) bad(preset, `'${name}' is not a plain name (letters, digits, _ $; not starting with a digit)`);
  if (options.image !== undefined && options.bin !== undefined) bad(preset, 'set image or bin, not both');
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535))
    bad(preset, `port ${options.port} is not a TCP port`);
  if ((options.user ?? 'root') === 'root' && options.rootPassword !== undefined && options.password !== undefined && options.rootPassword !== options.password)
    bad(preset, 'user is root: set its password with `password` or `rootPassword`, not two different ones');
}
