import { SandboxError } from '../../errors.js';
import type { LayerStore } from '../../layers/index.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { COPY_UPS, type CopyUp } from './copy-up.js';

/** The seed of the cluster: SQL files, a shell command, or a function; any combination, in that order. */
export interface PostgresSeed {
  /** SQL files, run with psql in order; relative paths resolve against `baseDir` (a config file's directory). */
  sql?: readonly string[];
  /** A shell command run with PG* variables set in `baseDir`, e.g. 'npx prisma migrate deploy && node seed.js'. */
  command?: string;
  /** A function given the live build sandbox (its env has DATABASE_URL); its source is part of the cache key. */
  run?: (sandbox: Sandbox) => Promise<void>;
  /** Files, directories or globs (like `sandbox-run build --input`) whose content invalidates the cached cluster. */
  inputs?: readonly string[];
}

/** How clients prove who they are (pg_hba.conf's method for local and loopback connections). */
export type PostgresAuth = 'trust' | 'md5' | 'scram-sha-256' | 'password';

/** A role created in the cached cluster. */
export interface PostgresRole {
  name: string;
  password?: string;
  /** Default true. */
  login?: boolean;
  superuser?: boolean;
  createdb?: boolean;
  createrole?: boolean;
  replication?: boolean;
  bypassrls?: boolean;
  /** Roles this one is a member of (GRANT ... TO name). */
  inRoles?: readonly string[];
}

/** `ssl: true` makes a self-signed certificate for localhost/127.0.0.1; or bring your own files. */
export type PostgresTls = boolean | { cert: string; key: string; ca?: string };

export interface PostgresOptions {
  seed?: PostgresSeed;
  /** Database created and named in DATABASE_URL (default 'app'). */
  database?: string;
  /** Superuser (default 'postgres'). */
  user?: string;
  /** The superuser's password (default none; DATABASE_URL carries it when set). */
  password?: string;
  /** Authentication method for every connection (default 'trust': no password needed). */
  auth?: PostgresAuth;
  /** Extra roles, built into the cached layer. */
  roles?: readonly PostgresRole[];
  /** pg_hba.conf lines put before the preset's own (the first matching line wins). */
  hba?: readonly string[];
  /** Extensions created in the database before the seed runs, e.g. ['pgcrypto', 'uuid-ossp']. */
  extensions?: readonly string[];
  /** TLS: the server offers it; clients get sslmode=verify-full and PGSSLROOTCERT. */
  ssl?: PostgresTls;
  /** What DATABASE_URL and PGHOST point at: the unix socket (default; works from the host too) or TCP localhost (default with ssl; inside the sandbox only). */
  connect?: 'tcp' | 'socket';
  /** Variables the preset must not export, e.g. ['DATABASE_URL'] for a suite that tests running without it. */
  omitEnv?: readonly string[];
  /** Port inside each sandbox (default 5432: every sandbox has its own loopback). */
  port?: number;
  /** initdb --data-checksums: every page carries a checksum, verified when read (default false). */
  checksums?: boolean;
  /** Extra postgresql.conf settings. */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** Major version: picks /usr/lib/postgresql/N/bin (or /usr/pgsql-N/bin). */
  version?: number;
  /** Run PostgreSQL from this image in the layer store (`sandbox-run pull postgres:16`), not from the host: its initdb, postgres, psql. */
  image?: string;
  /** Directory with postgres, initdb, psql; default: `version`'s, else $PG_BINDIR, `pg_config --bindir`, the newest /usr/lib/postgresql/N/bin. */
  bindir?: string;
  /** How long the server may take to start (default 30 s). */
  startTimeoutMs?: number;
  /** Tag of the seeded layer in the store (default `<project>-<hash>/postgres-<database>`). */
  layer?: string;
  /** Layer store for the seeded cluster (default: the one in $SANDBOX_RUN_HOME). */
  store?: LayerStore;
  /** Where relative paths (seed files, inputs, TLS files) resolve and seed.command runs; default: the config file's directory, else the current one. */
  baseDir?: string;
  /** How reads and writes of the seeded files are paid for (copy-up.ts): 'auto' (default) takes 'reflink', else 'lazy-open', else 'overlay'. */
  copyUp?: CopyUp;
}

/**
 * Settings for a disposable test cluster: durability off, small memory.
 * max_connections stays PostgreSQL's 100 (pools in tests size to it); it
 * costs ~2 MB of shared memory over 50, in each sandbox's own IPC namespace.
 */
export const TEST_SETTINGS: Readonly<Record<string, string | number>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '16MB',
  max_connections: 100,
  max_wal_size: '64MB',
  min_wal_size: '2MB',
  checkpoint_timeout: '30min',
  dynamic_shared_memory_type: 'posix',
  logging_collector: 'off',
  log_min_messages: 'warning',
};

/** Settings the preset sets itself (command line or its own options): a value in `settings` would be ignored or break the layout. */
const OWNED_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: 'the server listens on 127.0.0.1 in each sandbox (its own loopback)',
  port: "use the preset's `port` option",
  unix_socket_directories: 'the preset puts the socket in a directory shared with the host',
  data_directory: 'the cluster lives in the layer',
  hba_file: "use the preset's `hba` option",
  ssl_cert_file: "use the preset's `ssl: { cert, key, ca }` option",
  ssl_key_file: "use the preset's `ssl: { cert, key, ca }` option",
  ssl_ca_file: "use the preset's `ssl: { cert, key, ca }` option",
};

const AUTHS: readonly PostgresAuth[] = ['trust', 'md5', 'scram-sha-256', 'password'];
const IDENTIFIER = /^[A-Za-z_][\w$-]*$/;

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', `postgres preset: ${message}`);
}

/** Refuses what PostgreSQL would silently ignore or fail on later, with one line saying what to do. */
export function checkOptions(options: PostgresOptions): void {
  for (const key of Object.keys(options.settings ?? {})) {
    const why = OWNED_SETTINGS[key.toLowerCase()];
    if (why) bad(`settings.${key} is set by the preset (${why}); remove it`);
  }
  if (options.auth !== undefined && !AUTHS.includes(options.auth)) bad(`auth '${options.auth}' is not one of ${AUTHS.join(', ')}`);
  for (const name of [options.user, options.database, ...(options.roles ?? []).map((role) => role.name)])
    if (name !== undefined && !IDENTIFIER.test(name)) bad(`'${name}' is not a plain name (letters, digits, _ $ -; not starting with a digit)`);
  const names = new Set<string>();
  for (const role of options.roles ?? []) {
    if (role.name === (options.user ?? 'postgres')) bad(`roles: '${role.name}' is the superuser; set its password with the \`password\` option`);
    if (names.has(role.name)) bad(`roles: '${role.name}' is listed twice`);
    names.add(role.name);
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535))
    bad(`port ${options.port} is not a TCP port`);
  if (options.copyUp !== undefined && !COPY_UPS.includes(options.copyUp)) bad(`copyUp '${String(options.copyUp)}' is not one of ${COPY_UPS.join(', ')}`);
  if (options.image !== undefined && (options.bindir !== undefined || options.version !== undefined))
    bad('image brings its own server: leave out bindir and version');
  if (options.connect !== undefined && options.connect !== 'tcp' && options.connect !== 'socket')
    bad(`connect '${String(options.connect)}' is not 'tcp' or 'socket'`);
  for (const line of options.hba ?? [])
    if (!/^\s*(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc|include\w*)\s/.test(line) || line.includes('\n'))
      bad(`hba entry '${line}' is not a pg_hba.conf line (e.g. 'host all all 127.0.0.1/32 md5')`);
  if (options.auth && options.auth !== 'trust' && !options.password && !(options.roles ?? []).some((role) => role.password))
    bad(`auth '${options.auth}' needs a password: set \`password\` (the superuser's) or a role's`);
}

/** `key = 'value'` lines for postgresql.conf. */
export function configLines(settings: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(settings)
    .map(([key, value]) => `${key} = ${typeof value === 'string' ? `'${value.replace(/'/g, "''")}'` : String(value)}`)
    .join('\n');
}
