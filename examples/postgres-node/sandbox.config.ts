// Every sandbox gets its own PostgreSQL at 127.0.0.1:5432 on a copy-on-write
// view of the seeded cluster (built once, cached by the content of the SQL).
import { defineConfig, postgres } from 'sandbox-run';

export default defineConfig({
  presets: [postgres({ seed: { sql: ['../vitest-postgres/schema.sql', '../vitest-postgres/seed.sql'] } })],
  parallel: 8,
  timeout: '2m',
});
