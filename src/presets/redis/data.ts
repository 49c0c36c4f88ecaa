import { SandboxError } from '../../errors.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { Service } from '../../services/service.js';
import { readPresetInput } from '../common/inputs.js';
import { runStep } from '../common/steps.js';
import type { RedisSeed } from './options.js';
import { toProtocol } from './protocol.js';
import type { RedisBinaries } from './server.js';

/** Where the layer appears in every sandbox (on its private /tmp: the host root is read-only). */
export const MOUNT = '/tmp/sandbox-run-redis';
export const DATA_DIR = `${MOUNT}/data`;
export const DB_FILE = 'dump.rdb';
/** Redis 6 and Valkey print "Ready to accept connections", Redis 7.0 adds " tcp" or "at <socket>": after the data is loaded. */
export const READY = /ready to accept connections/i;

/** How one server runs: the same for the build's and each sandbox's. */
export interface ServerPlan {
  server: string;
  port: number;
  socket: string;
  password?: string | undefined;
  persistence: boolean;
  config: Readonly<Record<string, string | number>>;
}

/** The server's command line: every directive as `--name value...` (redis-server reads argv as config lines). */
export function serverCommand(plan: ServerPlan): string[] {
  const directives: [string, ...string[]][] = [
    ['port', String(plan.port)],
    // '-' makes ::1 optional: a loopback without IPv6 still starts; with it, "localhost" resolving to ::1 works.
    ['bind', '127.0.0.1', '-::1'],
    ['unixsocket', plan.socket],
    ['dir', DATA_DIR],
    ['dbfilename', DB_FILE],
    ['daemonize', 'no'],
    ['logfile', ''],
    ...(plan.persistence
      ? []
      : ([
          ['save', ''],
          ['appendonly', 'no'],
        ] as [string, string][])),
    ...(plan.password !== undefined ? ([['requirepass', plan.password]] as [string, string][]) : []),
    ...Object.entries(plan.config).map(([key, value]): [string, ...string[]] => [key, ...String(value).split(/\s+/).filter(Boolean)]),
  ];
  return [plan.server, ...directives.flatMap(([key, ...values]) => [`--${key}`, ...values])];
}

export interface DataPlan {
  binaries: RedisBinaries;
  port: number;
  baseDir: string;
  config: Readonly<Record<string, string | number>>;
  seed: RedisSeed;
}

/** Loads the seed into a server on the layer's data dir and saves it as dump.rdb: all in the build sandbox. */
export async function seedData(sb: Sandbox, plan: DataPlan): Promise<void> {
  const { seed, binaries } = plan;
  const step = (what: string, argv: readonly string[], input?: Buffer) => runStep(sb, 'redis', what, argv, input ? { input } : {});
  // The server's own client runs where the server does (in its image); shell steps run in the sandbox's view (the project's tools).
  const cliStep = (what: string, argv: readonly string[], input?: Buffer) =>
    runStep(sb, 'redis', what, argv, { ...(input ? { input } : {}), root: binaries.root });
  await step('creating the data directory', ['mkdir', '-p', DATA_DIR]);
  // Read on the host and written from inside: the server's uid owns it, and a file the sandbox cannot read still works.
  if (seed.rdb)
    await step(
      'copying seed.rdb',
      ['/bin/sh', '-c', 'cat > "$1"', 'sh', `${DATA_DIR}/${DB_FILE}`],
      readPresetInput('redis', 'seed.rdb', seed.rdb, plan.baseDir),
    );
  const socket = '/tmp/redis-build.sock';
  Object.assign(sb.env, { REDIS_URL: `redis://localhost:${plan.port}`, REDIS_HOST: 'localhost', REDIS_PORT: String(plan.port), REDIS_SOCKET: socket });
  const server = await Service.start(sb, {
    name: 'redis-build',
    command: serverCommand({ server: binaries.server, port: plan.port, socket, persistence: false, config: plan.config }),
    ready: { log: READY },
    startTimeoutMs: 120_000,
    ...(binaries.root ? { root: binaries.root } : {}),
  });
  sb.addService(server);
  const cli = [binaries.cli, '-s', socket];
  if (seed.aof) await cliStep(`replaying seed.aof ${seed.aof}`, [...cli, '--pipe'], readPresetInput('redis', 'seed.aof', seed.aof, plan.baseDir));
  if (seed.commands?.length) await cliStep('seed.commands', [...cli, '--pipe'], toProtocol(seed.commands));
  if (seed.command) await step(`seed command '${seed.command}'`, ['/bin/sh', '-c', seed.command]);
  if (seed.run) await seed.run(sb);
  const saved = await cliStep('saving the data (SAVE)', [...cli, 'SAVE']);
  if (saved.trim() !== 'OK') throw new SandboxError('SETUP_FAILED', `redis preset: SAVE answered '${saved.trim()}' instead of OK; see the server's log`);
  await server.stop();
}
