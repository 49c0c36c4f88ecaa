import { createSandbox } from '../../dist/index.js';
import { shop } from './database.js';

/**
 * Builds (or finds) the seeded cluster once. For the comparison modes (plain
 * forks) it also starts the one shared server every file then uses:
 * PG_MODE=shared uses its database directly, PG_MODE=template clones it per file.
 */
export default async function setup(): Promise<(() => Promise<void>) | void> {
  await shop.prepare();
  if ((process.env.PG_MODE ?? 'sandbox') === 'sandbox') return;
  const server = await createSandbox({ presets: [shop], workdir: 'none' });
  // Its socket directory is on the host: forks workers connect from outside.
  const url = server.env.DATABASE_URL!;
  process.env.DATABASE_URL = url;
  process.env.PG_ADMIN_URL = url.replace('/shop?', '/postgres?');
  return () => server.dispose();
}
