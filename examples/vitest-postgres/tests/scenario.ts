import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * What every test file does, with its own amount: it mutates the same seeded
 * rows as all the others (accounts 1 and 2, transfer 1, account 1000), so
 * files only pass when each one has the seeded database to itself.
 */
export function transferScenario(amount: number): void {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  beforeAll(() => db.connect());
  afterAll(() => db.end());

  const balance = async (id: number) =>
    (await db.query<{ balance: number }>('SELECT balance FROM accounts WHERE id = $1', [id])).rows[0]?.balance;

  it('starts from the seed', async () => {
    const { rows } = await db.query<{ count: string; total: string }>('SELECT count(*), sum(balance) AS total FROM accounts');
    expect(rows[0]).toEqual({ count: '1000', total: '100000' });
    expect((await db.query('SELECT * FROM transfers')).rowCount).toBe(0);
  });

  it(`moves ${amount} from account 1 to account 2`, async () => {
    await db.query('BEGIN');
    await db.query('UPDATE accounts SET balance = balance - $1 WHERE id = 1', [amount]);
    await db.query('UPDATE accounts SET balance = balance + $1 WHERE id = 2', [amount]);
    await db.query('INSERT INTO transfers (id, source, target, amount) VALUES (1, 1, 2, $1)', [amount]);
    await db.query('COMMIT');
    expect(await balance(1)).toBe(100 - amount);
    expect(await balance(2)).toBe(100 + amount);
  });

  it('closes the last account', async () => {
    await db.query('DELETE FROM accounts WHERE id = 1000');
    expect((await db.query('SELECT count(*)::int AS n FROM accounts')).rows[0]).toEqual({ n: 999 });
  });
}
