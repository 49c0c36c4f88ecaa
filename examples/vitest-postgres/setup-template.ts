// PG_MODE=template: the classic alternative to sandboxes. Each file clones the
// seeded database on the one shared server (CREATE DATABASE .. TEMPLATE),
// points DATABASE_URL at its clone, and drops it afterwards.
import pg from 'pg';
import { afterAll } from 'vitest';

const name = `file_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
const admin = async (sql: string) => {
  const client = new pg.Client({ connectionString: process.env.PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
};

await admin(`CREATE DATABASE ${name} TEMPLATE shop`);
process.env.DATABASE_URL = process.env.DATABASE_URL!.replace('/shop?', `/${name}?`);
// Registered first, so it runs after the file's own afterAll hooks.
afterAll(() => admin(`DROP DATABASE ${name} WITH (FORCE)`));
