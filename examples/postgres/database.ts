// The seeded shop database, as a sandbox-run preset: built once (initdb,
// schema, seed) into a cached layer, then started in every sandbox on a
// copy-on-write view of it. In your own project, import from 'sandbox-run';
// this example uses the repository's build so it runs from a fresh clone.
import { fileURLToPath } from 'node:url';
import { postgres } from '../../dist/index.js';

const file = (name: string) => fileURLToPath(new URL(name, import.meta.url));

/** The shop's PostgreSQL: every sandbox gets its own server on its own copy of the seed. */
export const shop = postgres({
  database: 'shop',
  seed: { sql: [file('db/schema.sql'), file('db/seed.sql')] },
});
