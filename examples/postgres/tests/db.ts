// Every test gets a pristine database: in sandbox mode (the default) a
// sandbox from a warm pool, with its own PostgreSQL on a copy-on-write view
// of the seed; with PG_MODE=shared, the one server the global setup started,
// which the tests then trample.
import pg from 'pg';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { createPool, type Sandbox, type SandboxPool } from '../../../dist/index.js';
import { shop } from '../database.js';

const shared = process.env.PG_MODE === 'shared';
let pool: Promise<SandboxPool> | undefined;

/**
 * Registers hooks that give each test of the file its own connected client.
 * The pool keeps the next sandbox warm while a test runs, so a test waits
 * only for a connection.
 */
export function useDatabase(): () => pg.Client {
  let client: pg.Client | undefined;
  let sandbox: Sandbox | undefined;
  beforeEach(async () => {
    let url = process.env.DATABASE_URL;
    if (!shared) {
      pool ??= createPool({ presets: [shop], workdir: 'none', size: 1 });
      sandbox = await (await pool).acquire();
      url = sandbox.env.DATABASE_URL;
    }
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterEach(async () => {
    await client?.end();
    await sandbox?.dispose();
    sandbox = undefined;
  });
  afterAll(async () => {
    const closing = pool;
    pool = undefined;
    await (await closing)?.close();
  });
  return () => client!;
}
