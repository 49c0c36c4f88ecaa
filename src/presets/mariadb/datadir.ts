import type { Sandbox } from '../../sandbox/sandbox.js';
import { Service } from '../../services/service.js';
import { readPresetInput } from '../common/inputs.js';
import { runStep } from '../common/steps.js';
import { mariadbEnv } from './connection.js';
import { type MariadbSeed, optionName, TEST_SETTINGS } from './options.js';
import type { MariadbBinaries } from './server.js';

/** Where the layer appears in every sandbox (on its private /tmp: the host root is read-only). */
export const MOUNT = '/tmp/sandbox-run-mariadb';
export const DATA_DIR = `${MOUNT}/data`;
/** "mariadbd: ready for connections." / "mysqld: ready for connections.": after InnoDB recovery, with both sockets open. */
export const READY = /d: ready for connections/;

type Settings = Readonly<Record<string, string | number | boolean>>;

/** The preset's test settings with the user's on top, names normalised ('_' and '-' are one to the server). */
export function serverSettings(settings: Settings): Record<string, string | number | boolean> {
  const merged: Record<string, string | number | boolean> = { ...TEST_SETTINGS };
  for (const [key, value] of Object.entries(settings)) merged[optionName(key)] = value;
  return merged;
}

const flags = (settings: Settings) => Object.entries(settings).map(([key, value]) => (value === true ? `--${key}` : `--${key}=${value === false ? 0 : value}`));

export interface ServerPlan {
  server: string;
  port: number;
  socket: string;
  settings: Settings;
}

/** The server's command line: no option files (a host's /etc/mysql must not leak in), every setting as a flag. */
export function serverCommand(plan: ServerPlan): string[] {
  return [
    plan.server,
    '--no-defaults',
    `--datadir=${DATA_DIR}`,
    `--socket=${plan.socket}`,
    `--port=${plan.port}`,
    '--bind-address=127.0.0.1',
    `--pid-file=/tmp/sandbox-run-mariadb-${plan.port}.pid`,
    ...flags(plan.settings),
  ];
}

export interface DatadirPlan {
  preset: string;
  binaries: MariadbBinaries;
  baseDir: string;
  database: string;
  user: string;
  password: string | undefined;
  rootPassword: string | undefined;
  port: number;
  settings: Settings;
  seed: MariadbSeed;
}

const literal = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
const ident = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/** Database, user and root's password, as SQL run once in the build (the hashes end up in the layer). */
export function accountsSql(plan: Pick<DatadirPlan, 'database' | 'user' | 'password' | 'rootPassword'>): string {
  const { database, user, password } = plan;
  const rootPassword = user === 'root' ? (password ?? plan.rootPassword) : plan.rootPassword;
  const sql = [`CREATE DATABASE IF NOT EXISTS ${ident(database)};`];
  // root from the socket and from loopback TCP (skip-name-resolve sees 127.0.0.1 and ::1, not localhost).
  for (const host of ['127.0.0.1', '::1']) {
    sql.push(`CREATE USER IF NOT EXISTS 'root'@${literal(host)};`, `GRANT ALL PRIVILEGES ON *.* TO 'root'@${literal(host)} WITH GRANT OPTION;`);
  }
  if (rootPassword !== undefined)
    for (const host of ['localhost', '127.0.0.1', '::1']) sql.push(`ALTER USER IF EXISTS 'root'@${literal(host)} IDENTIFIED BY ${literal(rootPassword)};`);
  if (user !== 'root') {
    sql.push(`CREATE USER ${literal(user)}@'%'${password !== undefined ? ` IDENTIFIED BY ${literal(password)}` : ''};`);
    sql.push(`GRANT ALL PRIVILEGES ON ${ident(database)}.* TO ${literal(user)}@'%';`);
  }
  return `${sql.join('\n')}\nFLUSH PRIVILEGES;\n`;
}

/** Initialise the data directory, start, accounts, seed, clean shutdown: all in the build sandbox, never as root. */
export async function initAndSeed(sb: Sandbox, plan: DatadirPlan): Promise<void> {
  const { binaries, seed, preset } = plan;
  const settings = serverSettings(plan.settings);
  // The server's own tools run where it does (in its image, if it is an image's); seed.command in the sandbox's view (the project's tools).
  const step = (what: string, argv: readonly string[], input?: string, env?: Record<string, string>) =>
    runStep(sb, preset, what, argv, { ...(input !== undefined ? { input } : {}), ...(env ? { env } : {}), root: binaries.root });
  if (binaries.installDb) {
    // --cross-bootstrap: no account for the build sandbox's host name; the settings shape the files (log size, character set).
    await step('mariadb-install-db', [
      binaries.installDb,
      '--no-defaults',
      `--datadir=${DATA_DIR}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--cross-bootstrap',
      ...(binaries.basedir ? [`--basedir=${binaries.basedir}`] : []),
      ...flags(settings),
    ]);
  } else {
    await step('mysqld --initialize-insecure', [binaries.server, '--no-defaults', '--initialize-insecure', `--datadir=${DATA_DIR}`, ...flags(settings)]);
  }
  const socket = '/tmp/mariadb-build.sock';
  const server = await Service.start(sb, {
    name: `${preset}-build`,
    command: serverCommand({ server: binaries.server, port: plan.port, socket, settings }),
    ready: { log: READY },
    startTimeoutMs: 120_000,
    ...(binaries.root ? { root: binaries.root } : {}),
  });
  sb.addService(server);
  // utf8mb4 like the server: with no option file the client would pick latin1 and mangle the seed's text.
  const client = [binaries.client, '--no-defaults', '--default-character-set=utf8mb4', `--socket=${socket}`, '--user=root', '--batch'];
  await step('creating the database and accounts', client, accountsSql(plan));
  const rootPassword = plan.user === 'root' ? (plan.password ?? plan.rootPassword) : plan.rootPassword;
  const asRoot = rootPassword !== undefined ? { MYSQL_PWD: rootPassword } : undefined;
  for (const file of seed.sql ?? [])
    await step(`seed ${file}`, [...client, `--database=${plan.database}`], readPresetInput(preset, 'seed.sql', file, plan.baseDir).toString('utf8'), asRoot);
  Object.assign(sb.env, mariadbEnv({ user: plan.user, password: plan.password, database: plan.database, port: plan.port, socket }));
  if (seed.command) await runStep(sb, preset, `seed command '${seed.command}'`, ['/bin/sh', '-c', seed.command]);
  if (seed.run) await seed.run(sb);
  // SIGTERM: a clean shutdown, so every sandbox starts without crash recovery.
  await server.stop();
}
