import { Slots } from '../pool/slots.js';
import type { Job, JobResult } from './job.js';

export interface ScheduleOptions {
  parallel: number;
  failFast: boolean;
  /** Aborted on Ctrl-C or on the first failure with --fail-fast. */
  controller: AbortController;
  run: (job: Job, slot: number) => Promise<JobResult>;
  onStart?: (job: Job, slot: number) => void;
  onEnd?: (result: JobResult, slot: number) => void;
}

const cancelled = (job: Job): JobResult => ({ job, status: 'cancelled', exitCode: null, durationMs: 0, output: '' });

/**
 * Hands jobs out to `parallel` slots as slots free up, so a slow item never
 * stalls the others. The slots are the pool's (a counter and a FIFO queue
 * with abort), so the runner and the warm pool share one engine.
 * Jobs not started when the run is aborted are reported as cancelled, so
 * every job appears in the summary exactly once.
 */
export async function schedule(jobs: readonly Job[], options: ScheduleOptions): Promise<JobResult[]> {
  const slots = new Slots(Math.max(1, Math.min(options.parallel, jobs.length)));
  // Slot numbers only label the live display: "slot 3: shard 3/8".
  const free = Array.from({ length: options.parallel }, (_, i) => i + 1);
  const { signal } = options.controller;
  // One listener for all waiting jobs (a listener per waiting take made Node warn past 10 items).
  const closeSlots = () => slots.close();
  signal.addEventListener('abort', closeSlots, { once: true });
  try {
    return await Promise.all(
      jobs.map(async (job) => {
        const release = await slots.take().catch(() => undefined);
        if (!release || signal.aborted) {
          release?.();
          return cancelled(job);
        }
        const slot = free.shift()!;
        try {
          options.onStart?.(job, slot);
          const result = await options.run(job, slot);
          options.onEnd?.(result, slot);
          if (options.failFast && result.status !== 'passed' && result.status !== 'cancelled') options.controller.abort();
          return result;
        } finally {
          free.push(slot);
          release();
        }
      }),
    );
  } finally {
    signal.removeEventListener('abort', closeSlots);
    slots.close();
  }
}
