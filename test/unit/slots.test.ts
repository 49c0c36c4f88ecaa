// The slot counter the runner and the warm pool schedule with: a limit, a
// FIFO queue, abort and close, on the main thread (no threads to count).
import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/pool/slots.js';
import type { Job, JobResult } from '../../src/runner/job.js';
import { schedule } from '../../src/runner/schedule.js';

/** Lets every queued promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Slots', () => {
  it('grants up to max at once and queues the rest in FIFO order', async () => {
    const slots = new Slots(2);
    const order: string[] = [];
    const a = await slots.take();
    const b = await slots.take();
    expect(slots.held).toBe(2);
    const c = slots.take().then((release) => {
      order.push('c');
      return release;
    });
    const d = slots.take().then((release) => {
      order.push('d');
      return release;
    });
    await settle();
    expect(order).toEqual([]);
    expect(slots.waiting).toBe(2);
    b();
    b(); // idempotent: frees one slot, not two
    await settle();
    expect(order).toEqual(['c']);
    expect(slots.held).toBe(2);
    a();
    await settle();
    expect(order).toEqual(['c', 'd']);
    (await c)();
    (await d)();
    expect(slots.held).toBe(0);
  });

  it('hands a freed slot to the oldest waiter, not to a take that comes after the release', async () => {
    const slots = new Slots(1);
    const first = await slots.take();
    const waiter = slots.take();
    first();
    const late = slots.take();
    const got: string[] = [];
    void waiter.then(() => got.push('waiter'));
    void late.then(() => got.push('late'));
    await settle();
    expect(got).toEqual(['waiter']);
    (await waiter)();
    await late;
    expect(got).toEqual(['waiter', 'late']);
  });

  it('drops an aborted waiter from the queue and rejects an already aborted take', async () => {
    const slots = new Slots(1);
    const held = await slots.take();
    const controller = new AbortController();
    const aborted = slots.take(controller.signal);
    const next = slots.take();
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED', message: 'acquire was aborted' });
    expect(slots.waiting).toBe(1);
    held();
    (await next)();
    await expect(slots.take(AbortSignal.abort())).rejects.toMatchObject({ code: 'ABORTED' });
    expect(slots.held).toBe(0);
  });

  it('on close rejects the waiters and later takes; held slots stay until released', async () => {
    const slots = new Slots(1);
    const held = await slots.take();
    const waiting = slots.take();
    slots.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED', message: 'the pool was closed while waiting' });
    await expect(slots.take()).rejects.toMatchObject({ code: 'ABORTED', message: 'the pool is closed' });
    expect(slots.held).toBe(1);
    held();
    expect(slots.held).toBe(0);
  });

  it('refuses a limit below one', () => {
    expect(() => new Slots(0)).toThrow(/whole number >= 1/);
  });
});

describe('schedule', () => {
  const jobs: Job[] = Array.from({ length: 7 }, (_, i) => ({ id: i + 1, label: `job ${i + 1}`, command: ['true'], env: {} }) as unknown as Job);
  const passed = (job: Job): JobResult => ({ job, status: 'passed', exitCode: 0, durationMs: 0, output: '' });

  it('runs at most `parallel` jobs at once, each on a free slot number, all on the main thread', async () => {
    let running = 0;
    let most = 0;
    const slotsInUse = new Set<number>();
    const threads = new Set<number>();
    const gates: (() => void)[] = [];
    const results = schedule(jobs, {
      parallel: 3,
      failFast: false,
      controller: new AbortController(),
      run: async (job, slot) => {
        expect(slotsInUse.has(slot)).toBe(false);
        slotsInUse.add(slot);
        threads.add(threadId);
        most = Math.max(most, ++running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        slotsInUse.delete(slot);
        return passed(job);
      },
    });
    let finished = false;
    void results.then(() => (finished = true));
    // Release the jobs one at a time as they start.
    while (!finished) {
      await settle();
      gates.shift()?.();
    }
    const done = await results;
    expect(done.map((r) => r.status)).toEqual(Array(7).fill('passed'));
    expect(most).toBe(3);
    expect([...threads]).toEqual([threadId]);
  });

  it('reports the jobs not started as cancelled after --fail-fast stops the run', async () => {
    const done = await schedule(jobs, {
      parallel: 2,
      failFast: true,
      controller: new AbortController(),
      run: async (job) => (job.id === 1 ? { ...passed(job), status: 'failed', exitCode: 1 } : passed(job)),
    });
    expect(done).toHaveLength(7);
    expect(done[0]!.status).toBe('failed');
    expect(done.slice(2).map((r) => r.status)).toEqual(Array(5).fill('cancelled'));
  });
});
