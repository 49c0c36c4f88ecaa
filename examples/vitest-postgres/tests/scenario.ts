import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * What every test file does, with its own amount, on the shop seed of
 * examples/postgres: all files change the same rows (customers 1, 2 and
 * 1000, order 5001), so they only pass when each has the seed to itself.
 */
export function transferScenario(cents: number): void {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  beforeAll(() => db.connect());
  afterAll(() => db.end());
  const one = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows[0];

  it('starts from the seed', async () => {
    expect(await one('SELECT count(*)::int AS customers, sum(credit_cents)::int AS credit FROM customers')).toEqual({
      customers: 1000,
      credit: 10_000_000,
    });
    expect(await one('SELECT max(id)::int AS last FROM orders')).toEqual({ last: 5000 });
  });

  it(`moves ${cents} cents from customer 1 to customer 2, who orders`, async () => {
    await db.query('BEGIN');
    await db.query('UPDATE customers SET credit_cents = credit_cents - $1 WHERE id = 1', [cents]);
    await db.query('UPDATE customers SET credit_cents = credit_cents + $1 WHERE id = 2', [cents]);
    const { id } = await one('INSERT INTO orders (customer_id) VALUES (2) RETURNING id');
    await db.query('COMMIT');
    expect(id).toBe(5001);
    expect((await db.query('SELECT credit_cents FROM customers WHERE id IN (1, 2) ORDER BY id')).rows).toEqual([
      { credit_cents: 10000 - cents },
      { credit_cents: 10000 + cents },
    ]);
  });

  it('removes the last customer', async () => {
    await db.query('DELETE FROM customers WHERE id = 1000');
    expect(await one('SELECT count(*)::int AS n FROM customers')).toEqual({ n: 999 });
  });
}
