import { SandboxError } from '../../errors.js';
import type { LayerStore } from '../../layers/index.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { splitCommandLine } from './protocol.js';

/** A Redis command: a line as redis-cli takes it (`SET greeting "hello world"`) or its arguments. */
export type RedisCommand = string | readonly string[];

/** The data every sandbox starts with; any combination, applied in this order. */
export interface RedisSeed {
  /** An RDB file (`dump.rdb`, e.g. from `redis-cli --rdb`) the server loads first. */
  rdb?: string;
  /** A file of commands in the Redis protocol (an append-only file without RDB preamble, or what `redis-cli --pipe` takes), replayed next. */
  aof?: string;
  /** Redis commands run in order, e.g. ['SET greeting hello', ['HSET', 'user:1', 'name', 'Ada Lovelace']]. */
  commands?: readonly RedisCommand[];
  /** A shell command run with REDIS_URL set in `baseDir`, e.g. 'node scripts/seed-cache.js'. */
  command?: string;
  /** A function given the live build sandbox (its env has REDIS_URL); its source is part of the cache key. */
  run?: (sandbox: Sandbox) => Promise<void>;
  /** Files, directories or globs whose content invalidates the cached data (for `command` and `run`). */
  inputs?: readonly string[];
}

export interface RedisOptions {
  /** Which server: 'redis' (redis-server) or 'valkey' (valkey-server); default whichever is installed, redis-server first. */
  server?: 'redis' | 'valkey';
  /** Path of the server binary (redis-server or valkey-server); its -cli is looked for beside it, then on PATH. */
  bin?: string;
  /** Run the server from this image in the layer store (`sandbox-run pull redis:7`), not from the host: its redis-server (or valkey-server) and -cli. */
  image?: string;
  /** Port inside each sandbox (default 6379: every sandbox has its own loopback). */
  port?: number;
  /** requirepass: clients must AUTH with it; REDIS_URL and REDIS_PASSWORD carry it. Not in the layer (a changed password rebuilds nothing). */
  password?: string;
  seed?: RedisSeed;
  /** Keep Redis' own save points (RDB snapshots into the sandbox's copy-on-write data dir). Default false: nothing is written. */
  persistence?: boolean;
  /** More redis.conf directives, e.g. { maxmemory: '64mb', 'maxmemory-policy': 'allkeys-lru' }; passed to the build's server too. */
  config?: Readonly<Record<string, string | number>>;
  /** Variables the preset must not export, e.g. ['REDIS_URL']. */
  omitEnv?: readonly string[];
  /** How long the server may take to start (default 30 s). */
  startTimeoutMs?: number;
  /** Tag of the seeded layer in the store (default `<project>-<hash>/redis`). */
  layer?: string;
  /** Layer store for the seeded data (default: the one in $SANDBOX_RUN_HOME). */
  store?: LayerStore;
  /** Where relative paths (seed files, inputs) resolve and seed.command runs; default: the config file's directory, else the current one. */
  baseDir?: string;
}

/** Directives the preset sets itself: a value in `config` would be overridden or break the layout. */
const OWNED: Readonly<Record<string, string>> = {
  port: "use the preset's `port` option",
  bind: 'the server listens on the loopback of each sandbox',
  unixsocket: 'the preset puts the socket in a directory shared with the host',
  dir: 'the data lives in the layer',
  dbfilename: 'the data lives in the layer',
  requirepass: "use the preset's `password` option",
  daemonize: 'the server runs in the foreground as a service',
  logfile: "the service's log is its output",
  save: "use the preset's `persistence` option",
  include: 'pass the directives themselves',
};

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', `redis preset: ${message}`);
}

/** Refuses what the server would ignore or fail on later, with one line saying what to do. */
export function checkRedisOptions(options: RedisOptions): void {
  if (options.server !== undefined && options.server !== 'redis' && options.server !== 'valkey')
    bad(`server '${String(options.server)}' is not 'redis' or 'valkey'`);
  if (options.image !== undefined && options.bin !== undefined) bad('set image or bin, not both');
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535))
    bad(`port ${options.port} is not a TCP port`);
  if (options.password !== undefined && (options.password === '' || /[\s"']/.test(options.password)))
    bad('password must be non-empty, without spaces or quotes (redis.conf would split it)');
  for (const [key, value] of Object.entries(options.config ?? {})) {
    const why = OWNED[key.toLowerCase()];
    if (why) bad(`config.${key} is set by the preset (${why}); remove it`);
    if (/[\r\n]/.test(String(value)) || /\s/.test(key)) bad(`config.${key}: one directive, one line`);
  }
  for (const command of options.seed?.commands ?? [])
    if ((typeof command === 'string' ? splitCommandLine(command) : command).length === 0) bad('seed.commands: an empty command');
}
