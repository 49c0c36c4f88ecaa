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

/**
 * Hands jobs out to `parallel` slots as slots free up, so a slow item never
 * stalls the others. Jobs not started when the run is aborted are reported
 * as cancelled, so every job appears in the summary exactly once.
 */
export async function schedule(jobs: readonly Job[], options: ScheduleOptions): Promise<JobResult[]> {
  const results = new Array<JobResult>(jobs.length);
  let next = 0;
  const slot = async (index: number) => {
    while (next < jobs.length && !options.controller.signal.aborted) {
      const position = next++;
      const job = jobs[position]!;
      options.onStart?.(job, index);
      const result = await options.run(job, index);
      results[position] = result;
      options.onEnd?.(result, index);
      if (options.failFast && result.status !== 'passed' && result.status !== 'cancelled') options.controller.abort();
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel, jobs.length) }, (_, i) => slot(i + 1)));
  return jobs.map((job, i) => results[i] ?? { job, status: 'cancelled', exitCode: null, durationMs: 0, output: '' });
}
