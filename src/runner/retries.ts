import type { Job, JobResult } from './job.js';
import type { FileResult } from './runner-files.js';

const retryable = (result: JobResult) => result.status === 'failed' || result.status === 'timed out';

/** Files that failed in an earlier attempt and passed in the last one are flaky. */
function flakyFiles(last: FileResult[] | undefined, earlier: readonly JobResult[]): FileResult[] | undefined {
  if (!last) return undefined;
  const failedBefore = new Set(earlier.flatMap((r) => (r.files ?? []).filter((f) => f.status === 'failed').map((f) => f.file)));
  return last.map((f) => (f.status === 'passed' && failedBefore.has(f.file) ? { ...f, status: 'flaky' } : f));
}

/**
 * Runs a job up to 1 + `retries` times, each attempt in a fresh sandbox
 * (`attempt` makes one), until it passes. A job that passes after failing
 * is `flaky`; one that never passes keeps its last attempt's status. Setup
 * failures and cancellations are not retried: running again would not help.
 */
export function withRetries(
  attempt: (job: Job) => Promise<JobResult>,
  retries: number,
  options: { signal: AbortSignal; onRetry?: (failed: JobResult, next: number) => void },
): (job: Job) => Promise<JobResult> {
  return async (job) => {
    const failures: JobResult[] = [];
    let result = await attempt(job);
    while (retryable(result) && failures.length < retries && !options.signal.aborted) {
      failures.push(result);
      options.onRetry?.(result, failures.length + 1);
      result = await attempt(job);
    }
    if (failures.length === 0) return { ...result, attempts: 1 };
    const first = failures[0]!;
    const files = flakyFiles(result.files, failures);
    return {
      ...result,
      status: result.status === 'passed' ? 'flaky' : result.status,
      attempts: failures.length + 1,
      firstFailure: { exitCode: first.exitCode, output: first.output },
      ...(files ? { files } : {}),
    };
  };
}
