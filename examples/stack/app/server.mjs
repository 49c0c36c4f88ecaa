// The app under test: a product catalog in PostgreSQL, cached in Redis,
// with a visit counter and a banner from Redis. Listens on a fixed port
// (3000), like a real deployment: every sandbox has its own loopback.
import http from 'node:http';
import pg from 'pg';
import { openRedis } from './redis.mjs';

const db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
const redis = await openRedis(process.env.REDIS_URL);

async function product(id) {
  const cached = await redis.send('GET', `product:${id}`);
  if (cached) return { ...JSON.parse(cached), cached: true };
  const { rows } = await db.query('SELECT id, name, price_cents, stock FROM products WHERE id = $1', [id]);
  if (!rows[0]) return undefined;
  await redis.send('SET', `product:${id}`, JSON.stringify(rows[0]), 'EX', 60);
  return { ...rows[0], cached: false };
}

async function order(id, quantity) {
  const { rows } = await db.query('UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING stock', [id, quantity]);
  if (!rows[0]) return undefined;
  await db.query('INSERT INTO orders (product_id, quantity) VALUES ($1, $2)', [id, quantity]);
  await redis.send('DEL', `product:${id}`);
  return rows[0];
}

const body = async (req) => JSON.parse((await req.toArray()).join('') || '{}');

const server = http.createServer(async (req, res) => {
  const reply = (status, value) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
  try {
    const [, kind, id, action] = req.url.split('/');
    if (req.method === 'GET' && kind === 'home') {
      const [banner, visits] = await Promise.all([redis.send('GET', 'banner'), redis.send('INCR', 'visits')]);
      return reply(200, { banner, visits });
    }
    if (req.method === 'GET' && kind === 'products') {
      const found = await product(Number(id));
      return found ? reply(200, found) : reply(404, { error: 'no such product' });
    }
    if (req.method === 'POST' && kind === 'products' && action === 'orders') {
      const left = await order(Number(id), (await body(req)).quantity ?? 1);
      return left ? reply(201, left) : reply(409, { error: 'out of stock' });
    }
    if (req.method === 'PUT' && kind === 'banner') {
      await redis.send('SET', 'banner', (await body(req)).text);
      return reply(204, null);
    }
    reply(404, { error: 'not found' });
  } catch (error) {
    reply(500, { error: error.message });
  }
});
server.listen(3000, '127.0.0.1');
