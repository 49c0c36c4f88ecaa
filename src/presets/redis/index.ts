import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { SandboxError } from '../../errors.js';
import type { LayerInfo } from '../../layers/types.js';
import { type PresetImage, presetImage, socketBinds } from '../common/image.js';
import { hashInputs, readPresetInput, sha256 } from '../common/inputs.js';
import { buildSeededLayer, projectLayerName } from '../common/seeded-layer.js';
import { socketDir } from '../common/sockets.js';
import type { PrepareOptions, PrepareResult, Preset, PresetParts } from '../types.js';
import { type DataPlan, MOUNT, READY, seedData, serverCommand } from './data.js';
import { checkRedisOptions, type RedisOptions } from './options.js';
import { findRedisBinaries, findRedisBinariesInImage, type RedisBinaries } from './server.js';

export type { RedisCommand, RedisOptions, RedisSeed } from './options.js';

/** Bump when the way the data is built changes: old cached seeds are then rebuilt. */
const RECIPE_VERSION = 1;
const SOCKET = 'redis.sock';

/**
 * The variables a sandbox gets: TCP on its own loopback (inside), and a
 * socket path that works inside and from the host. The password goes with
 * the user `default` (redis-cli 7.0 ignores one after an empty user name).
 */
export function redisEnv(port: number, password: string | undefined, socket: string, omit: readonly string[]): Record<string, string> {
  const auth = password !== undefined ? `default:${encodeURIComponent(password)}@` : '';
  const env: Record<string, string> = {
    REDIS_URL: `redis://${auth}localhost:${port}`,
    REDIS_HOST: 'localhost',
    REDIS_PORT: String(port),
    ...(password !== undefined ? { REDIS_PASSWORD: password } : {}),
    REDIS_SOCKET: socket,
  };
  for (const name of omit) delete env[name];
  return env;
}

class RedisPreset implements Preset {
  readonly name: string;
  readonly #options: RedisOptions;
  #baseDir: string | undefined;
  #binaries: RedisBinaries | undefined;
  #image: PresetImage | undefined;
  #layer: LayerInfo | undefined;
  #lowers: string[] = [];
  #prepared: Promise<PrepareResult> | undefined;

  constructor(options: RedisOptions) {
    checkRedisOptions(options);
    this.#options = options;
    this.name = options.server ?? 'redis';
    if (options.baseDir) this.#baseDir = resolve(options.baseDir);
  }

  get #base(): string {
    return this.#baseDir ?? process.cwd();
  }

  resolveFrom(dir: string): void {
    if (!this.#prepared) this.#baseDir ??= resolve(dir);
  }

  /** Loads the seed once per content into a layer with the server's dump.rdb; cached by key. */
  prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
    if (options.force || !this.#prepared) this.#prepared = this.#build(!!options.force);
    return this.#prepared;
  }

  /** The seeded layer (after prepare()); the data is its `data/`. */
  get layer(): LayerInfo | undefined {
    return this.#layer;
  }

  /** The server found (after prepare()): which, where, its version. */
  get binaries(): RedisBinaries | undefined {
    return this.#binaries;
  }

  forSandbox(): PresetParts {
    if (!this.#layer || !this.#binaries) throw new SandboxError('SETUP_FAILED', 'redis preset: prepare() must finish before sandboxes are created');
    const { port = 6379, password, omitEnv = [], persistence = false, config = {} } = this.#options;
    const sockets = socketDir('redis', SOCKET);
    const socket = `${sockets}/${SOCKET}`;
    const env = redisEnv(port, password, socket, omitEnv);
    const image = this.#image;
    return {
      overlays: [{ lower: this.#lowers, target: MOUNT }],
      binds: socketBinds(sockets, image),
      ...(image ? { images: [{ ref: image.digest, at: image.at }] } : {}),
      env,
      services: [
        {
          name: this.name,
          command: serverCommand({ server: this.#binaries.server, port, socket, password, persistence, config }),
          ready: { log: READY },
          startTimeoutMs: this.#options.startTimeoutMs ?? 30_000,
          exports: env,
          ...(image ? { root: image.at } : {}),
        },
      ],
      cleanup: () => rmSync(sockets, { recursive: true, force: true }),
    };
  }

  async #cacheKey(plan: DataPlan): Promise<string> {
    const { seed, baseDir, config, binaries } = plan;
    const file = (what: string, path: string | undefined) => (path ? sha256(readPresetInput('redis', what, path, baseDir)) : null);
    // Not the paths, the port or the password (none is in the layer): the version and the seed's content say what the data is.
    return sha256(
      JSON.stringify({
        RECIPE_VERSION,
        version: binaries.version,
        config,
        rdb: file('seed.rdb', seed.rdb),
        aof: file('seed.aof', seed.aof),
        commands: seed.commands ?? [],
        command: seed.command ?? null,
        run: seed.run?.toString() ?? null,
        inputs: await hashInputs('redis', seed.inputs ?? [], baseDir),
      }),
    ).slice(0, 24);
  }

  async #build(force: boolean): Promise<PrepareResult> {
    const o = this.#options;
    this.#image = o.image ? presetImage(o.image, this.name, o.store?.dir) : undefined;
    this.#binaries = this.#image ? findRedisBinariesInImage(this.#image, o.server) : findRedisBinaries(o.server, o.bin);
    const plan: DataPlan = { binaries: this.#binaries, port: o.port ?? 6379, baseDir: this.#base, config: o.config ?? {}, seed: o.seed ?? {} };
    const built = await buildSeededLayer(
      o.store,
      {
        name: o.layer ?? projectLayerName(this.#base, this.name),
        mountPoint: MOUNT,
        cacheKey: await this.#cacheKey(plan),
        cwd: this.#base,
        ...(this.#image ? { images: [{ ref: this.#image.digest, at: this.#image.at }] } : {}),
        run: (sandbox) => seedData(sandbox, plan),
      },
      force,
    );
    this.#layer = built.layer;
    this.#lowers = built.lowers;
    return built.result;
  }
}

export type RedisPresetHandle = Omit<Preset, 'prepare'> & {
  prepare(options?: PrepareOptions): Promise<PrepareResult>;
  readonly layer: LayerInfo | undefined;
  readonly binaries: RedisBinaries | undefined;
};

/**
 * Redis (or Valkey) in every sandbox, on a copy-on-write view of seeded
 * data built once and cached by content. Each sandbox gets its own server
 * at localhost:6379 (and a unix socket reachable from the host) and
 * REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_SOCKET (and REDIS_PASSWORD).
 *
 * ```ts
 * const cache = redis({ seed: { commands: ['SET greeting hello'] } });
 * await using sb = await createSandbox({ presets: [cache] });
 * ```
 */
export function redis(options: RedisOptions = {}): RedisPresetHandle {
  return new RedisPreset(options);
}

/** `redis({ ...options, server: 'valkey' })`: valkey-server and valkey-cli. */
export function valkey(options: Omit<RedisOptions, 'server'> = {}): RedisPresetHandle {
  return new RedisPreset({ ...options, server: 'valkey' });
}
