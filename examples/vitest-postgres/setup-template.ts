// PG_MODE=template: the classic alternative to sandboxes. Each file clones the
// seeded database on the one shared server (CREATE DATABASE .. TEMPLATE) and
// points DATABASE_URL at its clone.
import pg from 'pg';

const admin = new pg.Client({ connectionString: process.env.PG_ADMIN_URL });
await admin.connect();
const name = `file_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
await admin.query(`CREATE DATABASE ${name} TEMPLATE app`);
await admin.end();
process.env.DATABASE_URL = process.env.DATABASE_URL!.replace(/\/app$/, `/${name}`);
