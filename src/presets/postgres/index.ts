import { createHash } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { SandboxError } from '../../errors.js';
import { processScopedDir } from '../../home.js';
import { openStore } from '../../layers/index.js';
import type { LayerInfo } from '../../layers/types.js';
import { findInImage, type PresetImage, presetImage, socketBinds } from '../common/image.js';
import type { PrepareOptions, PrepareResult, Preset, PresetParts } from '../types.js';
import { findPostgresBindir, serverVersion } from './bindir.js';
import { CA_FILE, type ClusterPlan, DATA_DIR, initAndSeed, MOUNT, READY } from './cluster.js';
import { connectionEnv, defaultLayerName } from './connection.js';
import { type CopyUpChoice, chooseCopyUp, lazyOpenEnv, lazyOpenSettings, PRELOAD_SKIPPED, preloadBinds, preloadedLibrary } from './copy-up.js';
import { checkOptions, type PostgresOptions } from './options.js';
import { expandInputs, readInput } from './seed.js';
import { selfSignedTls, type TlsFiles } from './tls.js';

export { findPostgresBindir } from './bindir.js';
export type { CopyUp, CopyUpChoice, CopyUpMechanism } from './copy-up.js';
export type { PostgresAuth, PostgresOptions, PostgresRole, PostgresSeed, PostgresTls } from './options.js';

/** Bump when the way clusters are built changes: old cached seeds are then rebuilt. */
const RECIPE_VERSION = 5;

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** The host's server: its version from `postgres --version`. */
function hostServer(bindir: string): { bindir: string; version: string; major: number } {
  return { bindir, ...serverVersion(bindir) };
}

/** An image's server: postgres and initdb on its PATH; its digest stands for the version, PG_MAJOR (or the bindir) for the major. */
function imageServer(image: PresetImage): { bindir: string; version: string; major: number } {
  const postgres = findInImage(image, ['postgres']);
  const bindir = postgres ? postgres.slice(0, postgres.lastIndexOf('/')) : '';
  if (!postgres || !findInImage(image, ['initdb'])?.startsWith(`${bindir}/`))
    throw new SandboxError('SETUP_FAILED', `postgres preset: image ${image.ref} has no postgres and initdb side by side on its PATH; use a PostgreSQL image`);
  const env = image.config?.Env?.find((entry) => entry.startsWith('PG_MAJOR='))?.slice('PG_MAJOR='.length);
  const major = Number(env ?? /postgresql\/(\d+)\//.exec(`${bindir}/`)?.[1] ?? 0);
  return { bindir, version: `image ${image.ref} ${image.digest}`, major };
}

class PostgresPreset implements Preset {
  readonly name = 'postgres';
  readonly #options: PostgresOptions;
  #baseDir: string | undefined;
  #bindir = '';
  #layer: LayerInfo | undefined;
  #lowers: string[] = [];
  #major = 0;
  /** How the data's writable layer pays for what the server opens (copy-up.ts): reflink, lazy-open or plain overlay. */
  #copyUp: CopyUpChoice | undefined;
  /** The copy-up libraries to bind in, decided with #copyUp (the same for every sandbox). */
  #preloadBinds: ReturnType<typeof preloadBinds> = [];
  #image: PresetImage | undefined;
  #prepared: Promise<PrepareResult> | undefined;

  constructor(options: PostgresOptions) {
    checkOptions(options);
    this.#options = options;
    if (options.baseDir) this.#baseDir = resolve(options.baseDir);
  }

  get #base(): string {
    return this.#baseDir ?? process.cwd();
  }

  get #connect(): 'tcp' | 'socket' {
    return this.#options.connect ?? (this.#options.ssl ? 'tcp' : 'socket');
  }

  /** The config loader's hint: relative paths resolve against the config file's directory (unless `baseDir` was given). */
  resolveFrom(dir: string): void {
    if (!this.#prepared) this.#baseDir ??= resolve(dir);
  }

  /** Builds the seeded cluster once per content: a layer in the store, built in a sandbox and cached by key. */
  prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
    if (options.force || !this.#prepared) this.#prepared = this.#build(!!options.force);
    return this.#prepared;
  }

  /** The seeded layer's host directory (after prepare()); the cluster is its `data/`. */
  get cluster(): string {
    return this.#layer?.path ?? '';
  }

  /** The copy-up mechanism sandboxes get and why (after prepare()). */
  get copyUp(): CopyUpChoice | undefined {
    return this.#copyUp;
  }

  /** The seeded layer (after prepare()). */
  get layer(): LayerInfo | undefined {
    return this.#layer;
  }

  forSandbox(): PresetParts {
    if (!this.#layer) throw new SandboxError('SETUP_FAILED', 'postgres preset: prepare() must finish before sandboxes are created');
    const { user = 'postgres', database = 'app', port = 5432, password, omitEnv = [] } = this.#options;
    // The socket directory is on the host and bound at the same path, so the
    // same DATABASE_URL works inside the sandbox and from the host.
    const sockets = processScopedDir('sockets');
    // sun_path holds 107 bytes: PostgreSQL refuses a longer socket path.
    if (`${sockets}/.s.PGSQL.${port}`.length > 107) {
      rmSync(sockets, { recursive: true, force: true });
      throw new SandboxError(
        'SETUP_FAILED',
        `postgres preset: socket path under ${sockets} is too long for a unix socket; set SANDBOX_RUN_HOME to a shorter directory`,
      );
    }
    // The CA beside the socket: one path for clients inside and on the host.
    const caFile = this.#options.ssl ? join(sockets, 'root.crt') : undefined;
    if (caFile) copyFileSync(join(this.#layer.path, CA_FILE), caFile);
    const preload = this.#copyUp && preloadedLibrary(this.#copyUp) ? lazyOpenEnv(this.#copyUp, DATA_DIR) : undefined;
    const env = connectionEnv({ user, password, database, port, connect: this.#connect, caFile, omit: omitEnv, dataDir: DATA_DIR, preload }, sockets);
    return {
      overlays: [{ lower: this.#lowers, target: MOUNT, ...(this.#copyUp?.mechanism === 'reflink' ? { upperOnDisk: true } : {}) }],
      binds: [...socketBinds(sockets, this.#image), ...this.#preloadBinds],
      ...(this.#image ? { images: [{ ref: this.#image.digest, at: this.#image.at }] } : {}),
      env,
      services: [
        {
          name: 'postgres',
          command: [
            join(this.#bindir, 'postgres'),
            ...['-D', DATA_DIR, '-k', sockets, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
            ...(this.#copyUp ? lazyOpenSettings(this.#copyUp, this.#major) : []),
          ],
          // The loader skips an LD_PRELOAD entry it cannot load with a warning: the server would copy up whole files
          // while the preset says 'pages'.
          ...(preload ? { env: preload, failOnLog: PRELOAD_SKIPPED } : {}),
          ready: { log: READY },
          stopSignal: 'SIGINT',
          startTimeoutMs: this.#options.startTimeoutMs ?? 30_000,
          exports: env,
          ...(this.#image ? { root: this.#image.at } : {}),
        },
      ],
      cleanup: () => rmSync(sockets, { recursive: true, force: true }),
    };
  }

  /** TLS files for the layer: generated (ssl: true) or read from the given paths. */
  #tls(): TlsFiles | undefined {
    const { ssl } = this.#options;
    if (!ssl) return undefined;
    if (ssl === true) return selfSignedTls();
    const read = (what: string, file: string) => readInput(what, file, this.#base).toString('utf8');
    const cert = read('ssl.cert', ssl.cert);
    // Without a CA, clients verify against the server certificate itself (self-signed).
    return { cert, key: read('ssl.key', ssl.key), ca: ssl.ca ? read('ssl.ca', ssl.ca) : cert };
  }

  async #cacheKey(plan: Omit<ClusterPlan, 'tls'>, version: string): Promise<string> {
    const { seed, baseDir } = plan;
    const { ssl } = this.#options;
    const files = (list: readonly string[], what: string) => list.map((file) => [file, sha(readInput(what, file, baseDir))]);
    const inputs = (await expandInputs(seed.inputs ?? [], baseDir)).map((file) => [relative(baseDir, file), sha(readInput('seed.inputs', file, baseDir))]);
    const tls = !ssl ? null : ssl === true ? 'self-signed' : files([ssl.cert, ssl.key, ...(ssl.ca ? [ssl.ca] : [])], 'ssl file');
    // Not the paths (bindir, baseDir): the version and the files' content say what the cluster is; a moved project keeps its cache.
    const { bindir: _bindir, baseDir: _baseDir, seed: _seed, ...rest } = plan;
    return sha(
      JSON.stringify({
        RECIPE_VERSION,
        version,
        ...rest,
        tls,
        command: seed.command ?? null,
        sql: files(seed.sql ?? [], 'seed.sql'),
        inputs,
        run: seed.run?.toString() ?? null,
      }),
    ).slice(0, 24);
  }

  async #build(force: boolean): Promise<PrepareResult> {
    const o = this.#options;
    this.#image = o.image ? presetImage(o.image, 'postgres', o.store?.dir) : undefined;
    const { bindir, version, major } = this.#image ? imageServer(this.#image) : hostServer(findPostgresBindir(o.bindir, o.version));
    this.#bindir = bindir;
    this.#major = major;
    const database = o.database ?? 'app';
    const base: Omit<ClusterPlan, 'tls'> = {
      bindir: this.#bindir,
      major,
      baseDir: this.#base,
      database,
      user: o.user ?? 'postgres',
      password: o.password,
      auth: o.auth ?? 'trust',
      roles: o.roles ?? [],
      hba: o.hba ?? [],
      extensions: o.extensions ?? [],
      settings: o.settings ?? {},
      ...(o.checksums ? { checksums: true as const } : {}),
      port: o.port ?? 5432,
      seed: o.seed ?? {},
    };
    const cacheKey = await this.#cacheKey(base, version);
    const store = o.store ?? (await openStore());
    const started = new Date().toISOString();
    const layer = await store.build(
      {
        name: o.layer ?? defaultLayerName(this.#base, database),
        mountPoint: MOUNT,
        cacheKey,
        cwd: this.#base,
        ...(this.#image ? { images: [{ ref: this.#image.digest, at: this.#image.at }] } : {}),
        // Generated only when a build runs: a cached layer keeps its certificate.
        run: (sandbox) => initAndSeed(sandbox, { ...base, tls: this.#tls(), ...(this.#image ? { root: this.#image.at } : {}) }),
      },
      { force },
    );
    // Held for this process's life (the store sweeps leases of dead processes):
    // sandboxes may be created from the layer at any time until then.
    await store.lease(layer.digest);
    this.#lowers = await store.lowerDirs(layer.digest);
    this.#copyUp = await chooseCopyUp(o.copyUp ?? 'auto', store.dir, { major: this.#major });
    // A host library cannot be preloaded into a server chrooted into an image.
    if (this.#image && (this.#copyUp.mechanism === 'lazy-open' || this.#copyUp.mechanism === 'pages'))
      this.#copyUp = { mechanism: 'overlay', reason: 'the server runs from an image: plain overlay copy-up' };
    if (this.#image && this.#copyUp.mechanism === 'reflink')
      this.#copyUp = { mechanism: 'reflink', reflink: this.#copyUp.reflink, reason: this.#copyUp.reason };
    this.#preloadBinds = preloadBinds(this.#copyUp);
    this.#layer = layer;
    return { cached: layer.created < started, description: `${layer.names.join(', ') || '<none>'} ${layer.digest}, copyUp ${this.#copyUp.mechanism}` };
  }
}

/**
 * PostgreSQL in every sandbox, on a copy-on-write view of a seeded cluster
 * that is built once and cached by content. Each sandbox gets its own
 * server at 127.0.0.1:5432 (and a unix socket reachable from the host) and
 * the variables DATABASE_URL, PGHOST, PGPORT, PGUSER, PGDATABASE (and
 * PGPASSWORD, PGSSLROOTCERT, PGSSLMODE when they apply).
 *
 * ```ts
 * const pg = postgres({ seed: { sql: ['db/schema.sql', 'db/seed.sql'] } });
 * await using sb = await createSandbox({ presets: [pg] });
 * ```
 */
export function postgres(
  options: PostgresOptions = {},
): Preset & { readonly cluster: string; readonly layer: LayerInfo | undefined; readonly copyUp: CopyUpChoice | undefined } {
  return new PostgresPreset(options);
}
