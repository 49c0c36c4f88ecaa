// Every sandbox gets its own PostgreSQL at 127.0.0.1:5432 on a copy-on-write
// view of the seeded cluster (built once, cached by the content of the SQL).
import { defineConfig, postgres } from 'sandbox-run';

export default defineConfig({
  // Relative to this file, wherever sandbox-run is started from.
  presets: [postgres({ seed: { sql: ['db/schema.sql', 'db/seed.sql'] } })],
  parallel: 8,
  timeout: '2m',
});
