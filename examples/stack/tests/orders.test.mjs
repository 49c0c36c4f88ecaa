import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';

const app = process.env.APP_URL;

test('orders reach PostgreSQL; the seed has none', async () => {
  const db = new pg.Client(process.env.DATABASE_URL);
  await db.connect();
  try {
    assert.equal((await db.query('SELECT count(*)::int AS n FROM orders')).rows[0].n, 0);
    await fetch(`${app}/products/1/orders`, { method: 'POST', body: JSON.stringify({ quantity: 4 }) });
    await fetch(`${app}/products/3/orders`, { method: 'POST', body: JSON.stringify({ quantity: 1 }) });
    assert.deepEqual((await db.query('SELECT product_id, quantity FROM orders ORDER BY id')).rows, [
      { product_id: 1, quantity: 4 },
      { product_id: 3, quantity: 1 },
    ]);
    assert.equal((await db.query('SELECT stock FROM products WHERE id = 1')).rows[0].stock, 6);
  } finally {
    await db.end();
  }
});
