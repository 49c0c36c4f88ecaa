// Every sandbox gets its own PostgreSQL at 127.0.0.1:5432 on a copy-on-write
// view of the seeded cluster (built once, cached by the content of the SQL).
import { fileURLToPath } from 'node:url';
import { defineConfig, postgres } from 'sandbox-run';

// Paths relative to this file, wherever sandbox-run is started from.
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  presets: [postgres({ seed: { sql: [here('db/schema.sql'), here('db/seed.sql')] } })],
  parallel: 8,
  timeout: '2m',
});
