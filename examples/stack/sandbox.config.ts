// A whole stack in every sandbox, each part on its fixed port: PostgreSQL on
// 5432 and Redis on 6379 (seeded once, cached layers, copy-on-write per
// sandbox) and the app server on 3000, started after both are ready.
import { defineConfig, postgres, redis } from 'sandbox-run';

export default defineConfig({
  presets: [
    postgres({ database: 'shop', seed: { sql: ['db/schema.sql', 'db/seed.sql'] } }),
    redis({ seed: { commands: ['SET banner "Spring sale"', 'SET visits 0'] } }),
  ],
  services: [{ name: 'app', command: ['node', 'app/server.mjs'], ready: { tcp: 3000 }, exports: { APP_URL: 'http://127.0.0.1:3000' } }],
  parallel: 2,
  timeout: '2m',
});
