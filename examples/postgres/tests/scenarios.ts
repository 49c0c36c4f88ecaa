// What the test files do, each with its own numbers. They all touch the same
// seeded rows (customers 1-3, product 1, the books' prices), and assert
// exact values: they pass only when every test starts from the seed.
import { describe, expect, it } from 'vitest';
import { useDatabase } from './db.js';

const one = async <T>(db: ReturnType<ReturnType<typeof useDatabase>>, sql: string, params: unknown[] = []): Promise<T> =>
  (await db.query(sql, params)).rows[0] as T;

/** The seed's shape: what every test sees first. */
async function expectSeed(db: ReturnType<ReturnType<typeof useDatabase>>): Promise<void> {
  expect(
    await one(
      db,
      `SELECT (SELECT count(*)::int FROM customers) AS customers, (SELECT sum(credit_cents)::int FROM customers) AS credit,
                          (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM order_items) AS items,
                          (SELECT stock FROM products WHERE id = 1) AS stock`,
    ),
  ).toEqual({ customers: 1000, credit: 10_000_000, orders: 5000, items: 15000, stock: 100 });
}

/** Moves credit from customer 1 to customer 2 in a transaction. */
export function transferScenario(cents: number): void {
  describe(`transfer of ${cents} cents`, () => {
    const db = useDatabase();
    it('starts from the seed', () => expectSeed(db()));
    it('moves the credit and keeps the total', async () => {
      await db().query('BEGIN');
      await db().query('UPDATE customers SET credit_cents = credit_cents - $1 WHERE id = 1', [cents]);
      await db().query('UPDATE customers SET credit_cents = credit_cents + $1 WHERE id = 2', [cents]);
      await db().query('COMMIT');
      const rows = (await db().query('SELECT id, credit_cents FROM customers WHERE id IN (1, 2) ORDER BY id')).rows;
      expect(rows).toEqual([
        { id: 1, credit_cents: 10000 - cents },
        { id: 2, credit_cents: 10000 + cents },
      ]);
      expect(await one(db(), 'SELECT sum(credit_cents)::int AS total FROM customers')).toEqual({ total: 10_000_000 });
    });
  });
}

/** Customer 3 orders `quantity` of product 1: stock goes down, an order appears. */
export function orderScenario(quantity: number): void {
  describe(`order of ${quantity}`, () => {
    const db = useDatabase();
    it('starts from the seed', () => expectSeed(db()));
    it('takes the quantity out of stock', async () => {
      const { id } = await one<{ id: number }>(db(), "INSERT INTO orders (customer_id, status) VALUES (3, 'open') RETURNING id");
      expect(id).toBe(5001);
      await db().query('INSERT INTO order_items VALUES ($1, 1, $2)', [id, quantity]);
      await db().query('UPDATE products SET stock = stock - $1 WHERE id = 1', [quantity]);
      expect(await one(db(), 'SELECT stock FROM products WHERE id = 1')).toEqual({ stock: 100 - quantity });
      expect(await one(db(), 'SELECT count(*)::int AS n FROM orders WHERE customer_id = 3')).toEqual({ n: 6 });
    });
  });
}

/** Raises every book's price by `cents`. */
export function repriceScenario(cents: number): void {
  describe(`books cost ${cents} cents more`, () => {
    const db = useDatabase();
    it('starts from the seed', () => expectSeed(db()));
    it('changes exactly the books', async () => {
      const before = await one<{ sum: number }>(db(), "SELECT sum(price_cents)::int AS sum FROM products WHERE category = 'books'");
      expect(before).toEqual({ sum: 50 * 1000 + ((4 + 200) * 50) / 2 });
      const { rowCount } = await db().query("UPDATE products SET price_cents = price_cents + $1 WHERE category = 'books'", [cents]);
      expect(rowCount).toBe(50);
      expect(await one(db(), "SELECT sum(price_cents)::int AS sum FROM products WHERE category = 'books'")).toEqual({ sum: before.sum + 50 * cents });
    });
  });
}

/** Deletes customer `id` (2 or 3): their orders and order lines go with them. */
export function deleteScenario(id: number): void {
  describe(`customer ${id} leaves`, () => {
    const db = useDatabase();
    it('starts from the seed', () => expectSeed(db()));
    it('cascades to orders and order lines', async () => {
      await db().query('DELETE FROM customers WHERE id = $1', [id]);
      expect(await one(db(), 'SELECT count(*)::int AS customers FROM customers')).toEqual({ customers: 999 });
      expect(await one(db(), 'SELECT count(*)::int AS orders FROM orders')).toEqual({ orders: 4995 });
      expect(await one(db(), 'SELECT count(*)::int AS items FROM order_items')).toEqual({ items: 14985 });
    });
  });
}
