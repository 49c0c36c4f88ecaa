import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SandboxError } from '../errors.js';
import { processScopedDir } from '../home.js';
import { openStore, type LayerStore } from '../layers/index.js';
import type { LayerInfo } from '../layers/types.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { Service } from '../services/service.js';
import type { Preset, PresetParts } from './types.js';

/** Bump when the way clusters are built changes: old cached seeds are then rebuilt. */
const RECIPE_VERSION = 2;
/** Where the layer appears in every sandbox (on its private /tmp: the host root is read-only). */
const MOUNT = '/tmp/sandbox-run-postgres';
const DATA_DIR = `${MOUNT}/data`;

/** The seed of the cluster: SQL files, a shell command, or a function; any combination, in that order. */
export interface PostgresSeed {
  /** SQL files (host paths), run with psql in order. */
  sql?: readonly string[];
  /** A shell command run with PG* variables set, e.g. 'npx prisma migrate deploy && node seed.js'. */
  command?: string;
  /** A function given the live build sandbox (its env has DATABASE_URL); its source is part of the cache key. */
  run?: (sandbox: Sandbox) => Promise<void>;
  /** Host files whose content invalidates the cached cluster when it changes (for command/run seeds). */
  inputs?: readonly string[];
}

export interface PostgresOptions {
  seed?: PostgresSeed;
  /** Database created and named in DATABASE_URL (default 'app'). */
  database?: string;
  /** Superuser (default 'postgres'; trust authentication, tests need no password). */
  user?: string;
  /** Port inside each sandbox (default 5432: every sandbox has its own loopback). */
  port?: number;
  /** Extra postgresql.conf settings. */
  settings?: Readonly<Record<string, string | number>>;
  /** Directory with postgres, initdb, psql; default: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
  bindir?: string;
  /** How long the server may take to start (default 30 s). */
  startTimeoutMs?: number;
  /** Tag of the seeded layer in the store (default `postgres-<database>`). */
  layer?: string;
  /** Layer store for the seeded cluster (default: the one in $SANDBOX_RUN_HOME). */
  store?: LayerStore;
}

/** Settings for a disposable test cluster: durability off, small memory. */
const TEST_SETTINGS: Record<string, string | number> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '16MB',
  max_connections: 50,
  max_wal_size: '64MB',
  min_wal_size: '2MB',
  checkpoint_timeout: '30min',
  dynamic_shared_memory_type: 'posix',
  logging_collector: 'off',
  log_min_messages: 'warning',
};

/** Finds the server binaries or says how to install them. */
export function findPostgresBindir(explicit?: string): string {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // not Debian's layout
  }
  const found = candidates.find((dir) => existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb')));
  if (!found)
    throw new SandboxError(
      'SETUP_FAILED',
      'PostgreSQL server binaries (postgres, initdb) not found: install them (apt-get install postgresql, dnf install postgresql-server) or set PG_BINDIR',
    );
  return found;
}

function configLines(settings: Record<string, string | number>): string {
  return Object.entries(settings)
    .map(([key, value]) => `${key} = ${typeof value === 'number' ? value : `'${String(value).replace(/'/g, "''")}'`}`)
    .join('\n');
}

class PostgresPreset implements Preset {
  readonly name = 'postgres';
  readonly #options: Required<Pick<PostgresOptions, 'database' | 'user' | 'port'>> & PostgresOptions;
  #bindir = '';
  #layer: LayerInfo | undefined;
  #lowers: string[] = [];
  #prepared: Promise<void> | undefined;

  constructor(options: PostgresOptions) {
    this.#options = { database: 'app', user: 'postgres', port: 5432, ...options };
  }

  /** Builds the seeded cluster once per content: a layer in the store, built in a sandbox and cached by key. */
  prepare(): Promise<void> {
    this.#prepared ??= this.#build();
    return this.#prepared;
  }

  /** The seeded layer's host directory (after prepare()); the cluster is its `data/`. */
  get cluster(): string {
    return this.#layer?.path ?? '';
  }

  /** The seeded layer (after prepare()). */
  get layer(): LayerInfo | undefined {
    return this.#layer;
  }

  forSandbox(): PresetParts {
    if (!this.#layer) throw new SandboxError('SETUP_FAILED', 'postgres preset: prepare() must finish before sandboxes are created');
    const { user, database, port } = this.#options;
    // The socket directory is on the host and bound at the same path, so the
    // same DATABASE_URL works inside the sandbox and from the host.
    const sockets = processScopedDir('sockets');
    // sun_path holds 107 bytes: PostgreSQL refuses a longer socket path.
    if (`${sockets}/.s.PGSQL.${port}`.length > 107) {
      rmSync(sockets, { recursive: true, force: true });
      throw new SandboxError('SETUP_FAILED', `postgres preset: socket path under ${sockets} is too long for a unix socket; set SANDBOX_RUN_HOME to a shorter directory`);
    }
    const env = {
      PGHOST: sockets,
      PGPORT: String(port),
      PGUSER: user,
      PGDATABASE: database,
      DATABASE_URL: `postgresql://${user}@localhost:${port}/${database}?host=${encodeURIComponent(sockets)}`,
    };
    return {
      overlays: [{ lower: this.#lowers, target: MOUNT }],
      binds: [{ source: sockets }],
      env,
      services: [
        {
          name: 'postgres',
          command: [join(this.#bindir, 'postgres'), '-D', DATA_DIR, '-k', sockets, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
          ready: { log: /database system is ready to accept connections/ },
          stopSignal: 'SIGINT',
          startTimeoutMs: this.#options.startTimeoutMs ?? 30_000,
          exports: env,
        },
      ],
      cleanup: () => rmSync(sockets, { recursive: true, force: true }),
    };
  }

  #cacheKey(): string {
    const { seed = {}, database, user, settings = {} } = this.#options;
    const hash = createHash('sha256');
    hash.update(JSON.stringify({ RECIPE_VERSION, database, user, settings, bindir: this.#bindir, command: seed.command ?? null }));
    for (const file of [...(seed.sql ?? []), ...(seed.inputs ?? [])]) hash.update(readFileSync(resolve(file)));
    if (seed.run) hash.update(seed.run.toString());
    return hash.digest('hex').slice(0, 24);
  }

  async #build(): Promise<void> {
    this.#bindir = findPostgresBindir(this.#options.bindir);
    const store = this.#options.store ?? (await openStore());
    const layer = await store.build({
      name: this.#options.layer ?? `postgres-${this.#options.database}`,
      mountPoint: MOUNT,
      cacheKey: this.#cacheKey(),
      run: (sandbox) => this.#initAndSeed(sandbox),
    });
    // Held for this process's life (the store sweeps leases of dead processes):
    // sandboxes may be created from the layer at any time until then.
    await store.lease(layer.digest);
    this.#lowers = await store.lowerDirs(layer.digest);
    this.#layer = layer;
  }

  /** initdb, start, create the database, seed, and stop cleanly, all in a sandbox (never as root). */
  async #initAndSeed(sb: Sandbox): Promise<void> {
    const { user, database, port, seed = {}, settings = {} } = this.#options;
    const bin = (name: string) => join(this.#bindir, name);
    const data = DATA_DIR;
    const step = async (what: string, file: string, args: string[], input?: string) => {
      const result = await sb.exec(file, args, { ...(input !== undefined ? { input } : { stdin: 'ignore' }), all: true });
      if (result.exitCode !== 0) {
        const tail = (result.all ?? '').trimEnd().split('\n').slice(-15).join('\n');
        throw new SandboxError('SETUP_FAILED', `postgres preset: ${what} failed (exit ${result.exitCode}):\n${tail}`);
      }
    };
    await step('initdb', bin('initdb'), ['-D', data, '-U', user, '--auth=trust', '--wal-segsize=1', '--no-sync', '--encoding=UTF8', '--locale=C']);
    await step('configure', '/bin/sh', ['-c', `cat >> ${data}/postgresql.conf`], `\n# sandbox-run test settings\n${configLines({ ...TEST_SETTINGS, ...settings })}\n`);
    const env = { PGHOST: '/tmp', PGPORT: String(port), PGUSER: user, PGDATABASE: database, DATABASE_URL: `postgresql://${user}@localhost:${port}/${database}?host=%2Ftmp` };
    Object.assign(sb.env, env);
    const server = await Service.start(sb, {
      name: 'postgres-build',
      command: [bin('postgres'), '-D', data, '-k', '/tmp', '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
      ready: { log: /database system is ready to accept connections/ },
      stopSignal: 'SIGINT',
    });
    sb.addService(server);
    await step('createdb', bin('createdb'), [database]);
    for (const file of seed.sql ?? []) await step(`seed ${file}`, bin('psql'), ['-v', 'ON_ERROR_STOP=1', '-q', '-f', '-'], readFileSync(resolve(file), 'utf8'));
    if (seed.command) await step(`seed command '${seed.command}'`, '/bin/sh', ['-c', seed.command]);
    if (seed.run) await seed.run(sb);
    // A fast shutdown checkpoints: the committed cluster starts without recovery.
    await server.stop();
    await step('clean up', 'rm', ['-f', `${data}/postmaster.opts`]);
  }
}

/**
 * PostgreSQL in every sandbox, on a copy-on-write view of a seeded cluster
 * that is built once and cached by content. Each sandbox gets its own
 * server at 127.0.0.1:5432 (and a unix socket reachable from the host) and
 * the variables DATABASE_URL, PGHOST, PGPORT, PGUSER, PGDATABASE.
 *
 * ```ts
 * const pg = postgres({ seed: { sql: ['db/schema.sql', 'db/seed.sql'] } });
 * await using sb = await createSandbox({ presets: [pg] });
 * ```
 */
export function postgres(options: PostgresOptions = {}): Preset & { readonly cluster: string; readonly layer: LayerInfo | undefined } {
  return new PostgresPreset(options);
}
