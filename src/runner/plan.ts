import { glob } from 'tinyglobby';
import { detectTestRunner, substitute, withShardFlag, type Detection } from './test-command.js';
import { formatShard, itemsForMachine, sandboxShards, type Shard } from './shard.js';
import type { Job } from './job.js';

export interface PlanInput {
  command: string[];
  cwd: string;
  parallel: number;
  /** This machine's slice (1/1 when not split across machines). */
  machine: Shard;
  /** Queue mode: every file matching this glob gets its own sandbox. */
  each?: string;
}

export interface Plan {
  jobs: Job[];
  /** What the runner does on the user's behalf, said once at the start. */
  notes: string[];
}

/** The variables every sandbox gets in shard mode: the documented contract for any command. */
export function shardEnv(shard: Shard, workerId: number): Record<string, string> {
  return {
    SANDBOX_SHARD: formatShard(shard),
    SANDBOX_SHARD_INDEX: String(shard.index),
    SANDBOX_SHARD_COUNT: String(shard.count),
    SANDBOX_WORKER_ID: String(workerId),
  };
}

function shardJobs(input: PlanInput, detection: Detection | undefined): Job[] {
  return sandboxShards(input.machine, input.parallel).map((shard, i) => {
    const text = formatShard(shard);
    const command = substitute(input.command, { shard: text });
    return {
      id: i + 1,
      label: `shard ${text}`,
      command: detection ? withShardFlag(command, detection, text) : command,
      env: shardEnv(shard, i + 1),
      shard,
    };
  });
}

async function queueJobs(input: PlanInput, pattern: string): Promise<Job[]> {
  const all = (await glob(pattern, { cwd: input.cwd, onlyFiles: true })).sort();
  const items = itemsForMachine(all, input.machine);
  return items.map((item, i) => {
    const shard = { index: i + 1, count: items.length };
    const hasPlaceholder = input.command.some((arg) => arg.includes('{}'));
    const command = substitute(input.command, { shard: formatShard(input.machine), item });
    return {
      id: i + 1,
      label: item,
      command: hasPlaceholder ? command : [...command, item],
      env: { ...shardEnv(input.machine, i + 1), SANDBOX_ITEM: item },
      shard,
      item,
    };
  });
}

/** Turns the command line into jobs: N shards, or one job per matching item. */
export async function planJobs(input: PlanInput): Promise<Plan> {
  if (input.each) {
    const jobs = await queueJobs(input, input.each);
    const machine = input.machine.count > 1 ? ` (machine ${formatShard(input.machine)})` : '';
    return { jobs, notes: [`queue: ${jobs.length} item(s) matching ${input.each}${machine}, ${input.parallel} at a time`] };
  }
  const detection = detectTestRunner(input.command, input.cwd);
  const notes = detection
    ? [`${detection.via} runs ${detection.runner}: passing --shard=i/N to each sandbox`]
    : [`each sandbox gets SANDBOX_SHARD=i/N (and SANDBOX_SHARD_INDEX, SANDBOX_SHARD_COUNT, SANDBOX_WORKER_ID); split the work by it`];
  return { jobs: shardJobs(input, detection), notes };
}
