// A pool told how many sandboxes will be acquired in all (`total`, what the
// parallel runner knows: its job count) starts no replacement after the last
// one is taken: fifty jobs start fifty servers, not fifty plus fifty spare.
import { describe, expect, it } from 'vitest';
import { createPool } from '../../src/index.js';

const nextTick = () => new Promise((resolve) => setImmediate(resolve));

describe('pool total', () => {
  it('starts no more sandboxes than the total, and an acquire past it still gets one', async () => {
    await using pool = await createPool({ workdir: 'none', size: 2, total: 3 });
    await pool.warm();
    const idle: number[] = [];
    for (let i = 0; i < 4; i++) {
      const sb = await pool.acquire();
      expect((await sb.exec('true', [])).exitCode).toBe(0);
      await sb.dispose();
      await nextTick(); // the refill runs after the acquire
      idle.push(pool.idle);
    }
    // 2 warm; the first acquire's refill brings the count to 3; then none; the 4th was started on demand.
    expect(idle).toEqual([2, 1, 0, 0]);
  });

  it('refills after every acquire without a total', async () => {
    await using pool = await createPool({ workdir: 'none', size: 2 });
    for (let i = 0; i < 3; i++) await (await pool.acquire()).dispose();
    await nextTick();
    expect(pool.idle).toBe(2);
  });

  it('refuses a total that is not a whole number', async () => {
    await expect(createPool({ workdir: 'none', total: 1.5 })).rejects.toThrow('pool total: expected a whole number >= 0, got 1.5');
  });
});
