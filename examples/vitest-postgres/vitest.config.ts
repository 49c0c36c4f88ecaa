import { defineConfig } from 'vitest/config';
import { sandboxPool } from '../../dist/vitest/index.js';
import { shop } from './database.js';

// PG_MODE=sandbox (default): every file in its own sandbox with its own
// PostgreSQL on a copy-on-write view of the seeded cluster.
// PG_MODE=shared: plain forks, one shared server (red: the files trample each other).
// PG_MODE=template: plain forks, one shared server, a template clone per file.
const mode = process.env.PG_MODE ?? 'sandbox';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['./global-setup.ts'],
    setupFiles: mode === 'template' ? ['./setup-template.ts'] : [],
    pool: mode === 'sandbox' ? sandboxPool({ presets: [shop] }) : 'forks',
  },
});
