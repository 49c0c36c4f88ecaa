import assert from 'node:assert/strict';
import { test } from 'node:test';

const app = process.env.APP_URL;
const get = async (path) => (await fetch(`${app}${path}`)).json();

test('a product comes from PostgreSQL first, then from the Redis cache', async () => {
  assert.deepEqual(await get('/products/2'), { id: 2, name: 'teapot', price_cents: 4000, stock: 3, cached: false });
  assert.deepEqual(await get('/products/2'), { id: 2, name: 'teapot', price_cents: 4000, stock: 3, cached: true });
});

test('ordering the last teapots empties the stock and the cache', async () => {
  await get('/products/2');
  const order = await fetch(`${app}/products/2/orders`, { method: 'POST', body: JSON.stringify({ quantity: 3 }) });
  assert.equal(order.status, 201);
  assert.deepEqual(await get('/products/2'), { id: 2, name: 'teapot', price_cents: 4000, stock: 0, cached: false });
  assert.equal((await fetch(`${app}/products/2/orders`, { method: 'POST', body: '{}' })).status, 409);
});
