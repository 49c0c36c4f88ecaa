import assert from 'node:assert/strict';
import { test } from 'node:test';

const app = process.env.APP_URL;

test('the home page counts visits from the seeded 0 and shows the seeded banner', async () => {
  assert.deepEqual(await (await fetch(`${app}/home`)).json(), { banner: 'Spring sale', visits: 1 });
  assert.deepEqual(await (await fetch(`${app}/home`)).json(), { banner: 'Spring sale', visits: 2 });
});

test('a new banner is what the next visit sees', async () => {
  await fetch(`${app}/banner`, { method: 'PUT', body: JSON.stringify({ text: 'Closing down' }) });
  assert.equal((await (await fetch(`${app}/home`)).json()).banner, 'Closing down');
});
