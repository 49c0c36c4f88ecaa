import type { TestProject } from 'vitest/node';
import { createSandbox } from '../../dist/index.js';
import { shop } from './database.js';

/**
 * Builds the seeded cluster once, before the workers start (later builds of
 * the same seed are cache hits). PG_MODE=shared also starts the one shared
 * server every file then uses: the classic setup this example shows failing.
 */
export default async function setup(_project: TestProject): Promise<(() => Promise<void>) | void> {
  await shop.prepare();
  if (process.env.PG_MODE !== 'shared') return;
  const server = await createSandbox({ presets: [shop], workdir: 'none' });
  // Its socket directory is on the host: the workers connect from outside.
  process.env.DATABASE_URL = server.env.DATABASE_URL;
  return () => server.dispose();
}
