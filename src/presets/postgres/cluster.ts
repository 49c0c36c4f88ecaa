import { join } from 'node:path';
import { SandboxError } from '../../errors.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { Service } from '../../services/service.js';
import { hbaFile, passwordEncryption, rolesSql } from './auth.js';
import { createExtensionsSql, missingExtensionsError, missingExtensionsSql } from './extensions.js';
import { configLines, type PostgresAuth, type PostgresRole, type PostgresSeed, TEST_SETTINGS } from './options.js';
import { readInput } from './seed.js';
import type { TlsFiles } from './tls.js';

/** Where the layer appears in every sandbox (on its private /tmp: the host root is read-only). */
export const MOUNT = '/tmp/sandbox-run-postgres';
export const DATA_DIR = `${MOUNT}/data`;
/** The CA clients verify the server with, in the layer (copied next to each sandbox's socket for clients). */
export const CA_FILE = 'data/root.crt';
export const READY = /database system is ready to accept connections/;

/** Everything the build needs, resolved (paths absolute, defaults filled). */
export interface ClusterPlan {
  bindir: string;
  major: number;
  baseDir: string;
  database: string;
  user: string;
  password: string | undefined;
  auth: PostgresAuth;
  roles: readonly PostgresRole[];
  hba: readonly string[];
  extensions: readonly string[];
  settings: Readonly<Record<string, string | number | boolean>>;
  /** Only when true (absent from the cache key otherwise: existing seeds keep theirs). */
  checksums?: true;
  tls: TlsFiles | undefined;
  port: number;
  seed: PostgresSeed;
  /** The image mount the server runs chrooted into (postgres({ image })): its own tools (bindir) run there too. */
  root?: string;
}

/** initdb, TLS files, start, database, roles, extensions, seed, stop cleanly, final pg_hba.conf: all in a sandbox (never as root). */
export async function initAndSeed(sb: Sandbox, plan: ClusterPlan): Promise<void> {
  const { user, database, port, seed, tls } = plan;
  const bin = (name: string) => join(plan.bindir, name);
  const data = DATA_DIR;
  const step = async (what: string, file: string, args: string[], input?: string): Promise<string> => {
    // The server's own tools (bindir, also behind a shell) run where the server does; the rest in the sandbox's view.
    const inImage = plan.root !== undefined && [file, ...args].some((arg) => arg.startsWith(`${plan.bindir}/`));
    const result = await sb.exec(file, args, {
      ...(input !== undefined ? { input } : { stdin: 'ignore' }),
      all: true,
      ...(inImage ? { root: plan.root } : {}),
    });
    if (result.exitCode !== 0) {
      const tail = (result.all ?? '').trimEnd().split('\n').slice(-15).join('\n');
      throw new SandboxError('SETUP_FAILED', `postgres preset: ${what} failed (exit ${result.exitCode}):\n${tail}`);
    }
    return result.stdout ?? '';
  };
  // Written from inside, so owned by the server's uid; umask 077 gives the key the 0600 PostgreSQL demands.
  const write = (what: string, file: string, content: string) => step(what, '/bin/sh', ['-c', `umask 077 && cat > "$1"`, 'sh', `${data}/${file}`], content);
  const psql = (what: string, db: string, sql: string) => step(what, bin('psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-q', '-At', '-d', db, '-f', '-'], sql);

  // The build itself trusts local connections; the final pg_hba.conf is written after the seed.
  const checksums = plan.checksums ? ['--data-checksums'] : [];
  await step('initdb', bin('initdb'), ['-D', data, '-U', user, '--auth=trust', '--wal-segsize=1', '--no-sync', '--encoding=UTF8', '--locale=C', ...checksums]);
  const settings = { ...TEST_SETTINGS, password_encryption: passwordEncryption(plan.auth), ...(tls ? { ssl: 'on' } : {}), ...plan.settings };
  await step('configure', '/bin/sh', ['-c', `cat >> ${data}/postgresql.conf`], `\n# sandbox-run test settings\n${configLines(settings)}\n`);
  if (tls) {
    await write('writing server.crt', 'server.crt', tls.cert);
    await write('writing server.key', 'server.key', tls.key);
    await write('writing root.crt', 'root.crt', tls.ca);
  }
  const env = {
    PGHOST: '/tmp',
    PGPORT: String(port),
    PGUSER: user,
    PGDATABASE: database,
    DATABASE_URL: `postgresql://${user}@localhost:${port}/${database}?host=%2Ftmp`,
  };
  Object.assign(sb.env, env);
  const server = await Service.start(sb, {
    name: 'postgres-build',
    command: [bin('postgres'), '-D', data, '-k', '/tmp', '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
    ready: { log: READY },
    stopSignal: 'SIGINT',
    ...(plan.root ? { root: plan.root } : {}),
  });
  sb.addService(server);
  await step('createdb', bin('createdb'), [database]);
  if (plan.password !== undefined || plan.roles.length) await psql('creating roles', 'postgres', rolesSql(plan.auth, user, plan.password, plan.roles));
  if (plan.extensions.length) {
    const missing = (await psql('listing extensions', database, missingExtensionsSql(plan.extensions))).split('\n').filter(Boolean);
    if (missing.length) throw missingExtensionsError(missing, plan.major, plan.bindir);
    await psql('creating extensions', database, createExtensionsSql(plan.extensions));
  }
  for (const file of seed.sql ?? [])
    await step(`seed ${file}`, bin('psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', '-'], readInput('seed.sql', file, plan.baseDir).toString('utf8'));
  if (seed.command) await step(`seed command '${seed.command}'`, '/bin/sh', ['-c', seed.command]);
  if (seed.run) await seed.run(sb);
  // The running server keeps the trust rules it loaded; pg_hba_file_rules parses the new file, so a bad line fails the build, not every sandbox.
  await write('writing pg_hba.conf', 'pg_hba.conf', hbaFile(plan.auth, plan.hba));
  const errors = await psql('checking pg_hba.conf', 'postgres', "SELECT line_number || '|' || error FROM pg_hba_file_rules WHERE error IS NOT NULL");
  if (errors.trim()) {
    // Line 1 is the header comment: the user's entries start at line 2.
    const described = errors
      .trim()
      .split('\n')
      .map((row) => {
        const [line, error] = row.split('|', 2) as [string, string];
        return `'${plan.hba[Number(line) - 2] ?? `line ${line}`}': ${error}`;
      });
    throw new SandboxError('BAD_OPTIONS', `postgres preset: hba entry ${described.join('; ')}; fix the entry`);
  }
  // Hint bits, the visibility map and statistics, once here rather than in every sandbox: a sandbox's first read of an
  // unvacuumed table would dirty every page (hint bits), which the server then writes back (a copy of the table per
  // sandbox), and its autovacuum would vacuum and analyze the seeded tables a minute after start. With
  // synchronous_commit off, VACUUM sets no hint bit (and no page all-visible) for a transaction whose commit is not
  // flushed yet, and clog tracks that per group of 32 transactions: the checkpoint flushes the seed's commits (pgbench
  // -i's own vacuum is too early), and synchronous commits keep the vacuum's own ANALYZE from unflushing the group.
  // ANALYZE before VACUUM: ANALYZE replaces pg_statistic rows, and a dead row left behind is pruned by the first
  // sandbox query that plans with it (a write of pg_statistic and its index in every sandbox).
  await psql('checkpoint before vacuum', 'postgres', 'CHECKPOINT');
  const vacuum = 'export PGOPTIONS="-c synchronous_commit=on" && "$0" --all --analyze-only --quiet && exec "$0" --all --quiet';
  await step('vacuum', '/bin/sh', ['-c', vacuum, bin('vacuumdb')]);
  // A fast shutdown checkpoints: the committed cluster starts without recovery.
  await server.stop();
  await step('clean up', 'rm', ['-f', `${data}/postmaster.opts`]);
}
