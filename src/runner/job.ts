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
}

export type JobStatus = 'passed' | 'failed' | 'timed out' | 'setup failed' | 'cancelled';

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
}
