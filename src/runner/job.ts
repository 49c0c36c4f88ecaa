import type { FileResult } from './runner-files.js';
import type { Shard } from './shard.js';

/** One sandbox's worth of work: a shard (shard mode) or an item (queue mode). */
export interface Job {
  /** 1-based position, used in prefixes: [3/50]. */
  id: number;
  /** What the summary calls it: 'shard 3/50' or the item. */
  label: string;
  command: string[];
  env: Record<string, string>;
  shard: Shard;
  item?: string;
  /** Shard mode with timings: the test files this sandbox's runner is given. */
  files?: string[];
  /** Host directories bound into this job's sandbox only (the runner's report directory). */
  binds?: { source: string; target: string; readonly: boolean }[];
  /** Where, on the host, the runner's JSON report of this job lands. */
  reportFile?: string;
}

/** `flaky`: failed, then passed on a retry in a fresh sandbox. */
export type JobStatus = 'passed' | 'flaky' | 'failed' | 'timed out' | 'setup failed' | 'cancelled';

export interface JobResult {
  job: Job;
  status: JobStatus;
  exitCode: number | null;
  durationMs: number;
  /** stdout and stderr interleaved, as the command wrote them. */
  output: string;
  /** With --keep-failed: the kept writable layer of the working directory. */
  kept?: string;
  /** One line: why the sandbox could not be set up. */
  error?: string;
  /** Sandboxes it took (1 + retries used). */
  attempts?: number;
  /** The first failed attempt of a retried job: what JUnit shows for a flaky one. */
  firstFailure?: { exitCode: number | null; output: string };
  /** Per test file, from the runner's report (shard mode with Vitest, Jest or Playwright). */
  files?: FileResult[];
}
