import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';
import { Sandbox } from '../../src/index.js';
import { buildSeed, DATA, startPostgres } from './postgres.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/**
 * Builds the seeded cluster once. For the comparison modes (plain forks)
 * it also starts the one shared server the files then all use: PG_MODE=shared
 * uses its seeded database directly, PG_MODE=template clones it per file.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const seed = await buildSeed();
  project.provide('seedDir', seed);
  const mode = process.env.PG_MODE ?? 'sandbox';
  if (mode === 'sandbox') return;
  // One sandbox on the host's network, so the forks workers can reach it.
  const shared = await Sandbox.create({ workdir: 'none', network: 'host', overlays: [{ lower: `${seed}/pgdata`, target: DATA }] });
  const port = await freePort();
  const { DATABASE_URL } = await startPostgres(shared, { port, extra: ['-c', 'max_connections=200'] });
  process.env.DATABASE_URL = DATABASE_URL;
  process.env.PG_ADMIN_URL = DATABASE_URL.replace(/\/app$/, '/postgres');
  return () => shared.dispose();
}

declare module 'vitest' {
  export interface ProvidedContext {
    seedDir: string;
  }
}
