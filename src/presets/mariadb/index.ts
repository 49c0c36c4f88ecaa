import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { SandboxError } from '../../errors.js';
import type { LayerInfo } from '../../layers/types.js';
import { type PresetImage, presetImage, socketBinds } from '../common/image.js';
import { hashInputs, readPresetInput, sha256 } from '../common/inputs.js';
import { buildSeededLayer, projectLayerName } from '../common/seeded-layer.js';
import { socketDir } from '../common/sockets.js';
import type { PrepareOptions, PrepareResult, Preset, PresetParts } from '../types.js';
import { mariadbEnv } from './connection.js';
import { type DatadirPlan, initAndSeed, MOUNT, READY, serverCommand, serverSettings } from './datadir.js';
import { checkMariadbOptions, type MariadbOptions } from './options.js';
import { findMariadbBinaries, findMariadbBinariesInImage, type MariadbBinaries } from './server.js';

export type { MariadbOptions, MariadbSeed } from './options.js';

/** Bump when the way databases are built changes: old cached seeds are then rebuilt. */
const RECIPE_VERSION = 1;
const SOCKET = 'mysqld.sock';

class MariadbPreset implements Preset {
  readonly #options: MariadbOptions;
  #baseDir: string | undefined;
  #binaries: MariadbBinaries | undefined;
  #image: PresetImage | undefined;
  #layer: LayerInfo | undefined;
  #lowers: string[] = [];
  #prepared: Promise<PrepareResult> | undefined;

  constructor(
    readonly name: 'mariadb' | 'mysql',
    options: MariadbOptions,
  ) {
    checkMariadbOptions(name, options);
    this.#options = options;
    if (options.baseDir) this.#baseDir = resolve(options.baseDir);
  }

  get #base(): string {
    return this.#baseDir ?? process.cwd();
  }

  resolveFrom(dir: string): void {
    if (!this.#prepared) this.#baseDir ??= resolve(dir);
  }

  /** Builds the seeded data directory once per content: a layer in the store, built in a sandbox and cached by key. */
  prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
    if (options.force || !this.#prepared) this.#prepared = this.#build(!!options.force);
    return this.#prepared;
  }

  /** The seeded layer (after prepare()); the data directory is its `data/`. */
  get layer(): LayerInfo | undefined {
    return this.#layer;
  }

  /** The server found (after prepare()): flavor, paths, version. */
  get binaries(): MariadbBinaries | undefined {
    return this.#binaries;
  }

  forSandbox(): PresetParts {
    if (!this.#layer || !this.#binaries) throw new SandboxError('SETUP_FAILED', `${this.name} preset: prepare() must finish before sandboxes are created`);
    const { user = 'root', password, database = 'app', port = 3306, omitEnv = [], settings = {} } = this.#options;
    const sockets = socketDir(this.name, SOCKET);
    const socket = `${sockets}/${SOCKET}`;
    const env = mariadbEnv({ user, password, database, port, socket, omit: omitEnv });
    const image = this.#image;
    return {
      overlays: [{ lower: this.#lowers, target: MOUNT }],
      binds: socketBinds(sockets, image),
      ...(image ? { images: [{ ref: image.digest, at: image.at }] } : {}),
      env,
      services: [
        {
          name: this.name,
          command: serverCommand({ server: this.#binaries.server, port, socket, settings: serverSettings(settings) }),
          ready: { log: READY },
          startTimeoutMs: this.#options.startTimeoutMs ?? 60_000,
          exports: env,
          ...(image ? { root: image.at } : {}),
        },
      ],
      cleanup: () => rmSync(sockets, { recursive: true, force: true }),
    };
  }

  async #cacheKey(plan: DatadirPlan): Promise<string> {
    const { seed, baseDir, binaries, preset: _preset, port: _port, baseDir: _baseDir, seed: _seed, ...rest } = plan;
    // Not the paths or the port (neither is in the layer): the version and the files' content say what the database is.
    return sha256(
      JSON.stringify({
        RECIPE_VERSION,
        version: binaries.version,
        ...rest,
        settings: serverSettings(rest.settings),
        sql: (seed.sql ?? []).map((file) => [file, sha256(readPresetInput(this.name, 'seed.sql', file, baseDir))]),
        command: seed.command ?? null,
        run: seed.run?.toString() ?? null,
        inputs: await hashInputs(this.name, seed.inputs ?? [], baseDir),
      }),
    ).slice(0, 24);
  }

  async #build(force: boolean): Promise<PrepareResult> {
    const o = this.#options;
    this.#image = o.image ? presetImage(o.image, this.name, o.store?.dir) : undefined;
    this.#binaries = this.#image ? findMariadbBinariesInImage(this.name, this.#image) : findMariadbBinaries(this.name, o.bin);
    const database = o.database ?? 'app';
    const plan: DatadirPlan = {
      preset: this.name,
      binaries: this.#binaries,
      baseDir: this.#base,
      database,
      user: o.user ?? 'root',
      password: o.password,
      rootPassword: o.rootPassword,
      port: o.port ?? 3306,
      settings: o.settings ?? {},
      seed: o.seed ?? {},
    };
    const built = await buildSeededLayer(
      o.store,
      {
        name: o.layer ?? projectLayerName(this.#base, `${this.name}-${database}`),
        mountPoint: MOUNT,
        cacheKey: await this.#cacheKey(plan),
        cwd: this.#base,
        ...(this.#image ? { images: [{ ref: this.#image.digest, at: this.#image.at }] } : {}),
        run: (sandbox) => initAndSeed(sandbox, plan),
      },
      force,
    );
    this.#layer = built.layer;
    this.#lowers = built.lowers;
    return built.result;
  }
}

export type MariadbPresetHandle = Omit<Preset, 'prepare'> & {
  prepare(options?: PrepareOptions): Promise<PrepareResult>;
  readonly layer: LayerInfo | undefined;
  readonly binaries: MariadbBinaries | undefined;
};

/**
 * MariaDB in every sandbox, on a copy-on-write view of a seeded data
 * directory that is built once and cached by content. Each sandbox gets its
 * own server at 127.0.0.1:3306 (and a unix socket reachable from the host)
 * and DATABASE_URL (mysql://...), MYSQL_HOST, MYSQL_PORT, MYSQL_USER,
 * MYSQL_PASSWORD, MYSQL_DATABASE, MYSQL_UNIX_PORT.
 *
 * ```ts
 * const db = mariadb({ database: 'shop', seed: { sql: ['db/schema.sql'] } });
 * await using sb = await createSandbox({ presets: [db] });
 * ```
 */
export function mariadb(options: MariadbOptions = {}): MariadbPresetHandle {
  return new MariadbPreset('mariadb', options);
}

/** The same preset named for MySQL users: the server found may be MariaDB's mariadbd or mysqld, or Oracle's mysqld. */
export function mysql(options: MariadbOptions = {}): MariadbPresetHandle {
  return new MariadbPreset('mysql', options);
}
