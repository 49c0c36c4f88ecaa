// A seeded PostgreSQL cluster for the example: built once, then started in
// each sandbox on a copy-on-write view of it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { run, type Sandbox } from '../../src/index.js';

const HERE = new URL('.', import.meta.url).pathname;
const SQL = ['schema.sql', 'seed.sql'].map((name) => join(HERE, name));
/** Where the cluster appears inside a sandbox (under /tmp: the host root is read-only). */
export const DATA = '/tmp/pgdata';
export const PORT = 5432;
/** Benchmarks make the seed realistic: PG_SEED_FILLER_MB adds an untouched table of about that size. */
const FILLER_MB = Number(process.env.PG_SEED_FILLER_MB ?? 0);

/** The seeded cluster's host directory, keyed by the SQL that made it. */
export function seedDir(): string {
  const hash = createHash('sha256');
  for (const file of SQL) hash.update(readFileSync(file));
  hash.update(`filler ${FILLER_MB}`);
  return join(tmpdir(), `sandbox-run-example-pg-${process.getuid!()}-${hash.digest('hex').slice(0, 12)}`);
}

/**
 * Builds the seeded cluster unless it exists: initdb, schema, seed, stop.
 * It runs in a sandbox (initdb refuses root, the sandbox never is) with the
 * output directory bound read-write.
 */
export async function buildSeed(): Promise<string> {
  const dir = seedDir();
  if (existsSync(dir)) return dir;
  const building = `${dir}.building-${process.pid}`;
  mkdirSync(building, { recursive: true });
  const script = [
    'set -e',
    `initdb -D ${building}/pgdata -U postgres --auth=trust --wal-segsize=1 --no-sync >/dev/null`,
    `pg_ctl -D ${building}/pgdata -o "-c listen_addresses='' -k /tmp -c fsync=off" -w -l /tmp/build.log start >/dev/null`,
    'createdb -h /tmp -U postgres app',
    `psql -h /tmp -U postgres -d app -v ON_ERROR_STOP=1 -q ${SQL.map((file) => `-f ${file}`).join(' ')}`,
    ...(FILLER_MB > 0
      ? [`psql -h /tmp -U postgres -d app -q -c "CREATE TABLE filler AS SELECT n, repeat(md5(n::text), 30) AS pad FROM generate_series(1, ${FILLER_MB * 1000}) AS n"`]
      : []),
    `pg_ctl -D ${building}/pgdata -w stop >/dev/null`,
  ].join('\n');
  // The SQL files are read through a read-only view of the example (hidden under /tmp otherwise).
  const result = await run('/bin/sh', ['-c', script], { cwd: HERE, workdir: 'ro', binds: [{ source: building }] });
  if (result.exitCode !== 0) throw new Error(`building the seeded cluster failed:\n${result.stderr}`);
  try {
    renameSync(building, dir);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another run built it first
  }
  return dir;
}

/** Resolves once `stream` prints a line matching `ready`, rejects with the log tail if it ends first. */
function waitForLine(stream: Readable, ready: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += String(chunk);
      if (ready.test(log)) {
        stream.off('data', onData);
        stream.resume();
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('end', () => {
      const tail = log.trim().split('\n').slice(-15).join('\n');
      reject(new Error(`${what} exited before it was ready; its log ends with:\n${tail}`));
    });
  });
}

/**
 * Starts PostgreSQL in the sandbox on its copy of the seeded cluster, on the
 * sandbox's own 127.0.0.1:5432, and resolves with DATABASE_URL once it
 * accepts connections (it says so in its log).
 */
export async function startPostgres(
  sandbox: Sandbox,
  options: { data?: string; port?: number; extra?: string[] } = {},
): Promise<{ DATABASE_URL: string }> {
  const port = options.port ?? PORT;
  const server = sandbox.spawn(
    'postgres',
    ['-D', options.data ?? DATA, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', '/tmp', '-c', 'fsync=off', ...(options.extra ?? [])],
    { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false },
  );
  await waitForLine(server.stderr as Readable, /database system is ready to accept connections/, 'PostgreSQL');
  return { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/app` };
}
