// What every test file does, with its own amount: it mutates the same seeded
// rows as all the others (accounts 1 and 2, transfer 1, account 1000), so a
// file only passes when it has the seeded database to itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';

export function transferScenario(amount) {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  before(() => db.connect());
  after(() => db.end());
  const balance = async (id) => (await db.query('SELECT balance FROM accounts WHERE id = $1', [id])).rows[0]?.balance;

  test('starts from the seed', async () => {
    const { rows } = await db.query('SELECT count(*)::int AS count, sum(balance)::int AS total FROM accounts');
    assert.deepEqual(rows[0], { count: 1000, total: 100000 });
    assert.equal((await db.query('SELECT * FROM transfers')).rowCount, 0);
  });

  test(`moves ${amount} from account 1 to account 2`, async () => {
    await db.query('BEGIN');
    await db.query('UPDATE accounts SET balance = balance - $1 WHERE id = 1', [amount]);
    await db.query('UPDATE accounts SET balance = balance + $1 WHERE id = 2', [amount]);
    await db.query('INSERT INTO transfers (id, source, target, amount) VALUES (1, 1, 2, $1)', [amount]);
    await db.query('COMMIT');
    assert.equal(await balance(1), 100 - amount);
    assert.equal(await balance(2), 100 + amount);
  });

  test('closes the last account', async () => {
    await db.query('DELETE FROM accounts WHERE id = 1000');
    assert.equal((await db.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, 999);
  });
}
