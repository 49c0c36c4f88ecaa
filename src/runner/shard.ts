/** One slice of the work: `index` of `count`, both 1-based like `vitest --shard 2/4`. */
export interface Shard {
  index: number;
  count: number;
}

export class ShardError extends Error {
  override readonly name = 'ShardError';
}

/** Parses 'k/M' (1 <= k <= M). */
export function parseShard(text: string, what = '--shard'): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) throw new ShardError(`${what} '${text}': expected k/M with 1 <= k <= M, e.g. 2/4`);
  return { index, count };
}

/**
 * The machine's shard from CI variables when --shard is not given:
 * GitLab `parallel:` (CI_NODE_INDEX/CI_NODE_TOTAL, 1-based) and Kubernetes
 * Indexed Jobs (JOB_COMPLETION_INDEX, 0-based, with the count in
 * SANDBOX_RUN_SHARD_COUNT since Kubernetes does not expose it).
 */
export function shardFromEnv(env: NodeJS.ProcessEnv): Shard | undefined {
  if (env.CI_NODE_INDEX && env.CI_NODE_TOTAL) return parseShard(`${env.CI_NODE_INDEX}/${env.CI_NODE_TOTAL}`, 'CI_NODE_INDEX/CI_NODE_TOTAL');
  if (env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== '') {
    if (!env.SANDBOX_RUN_SHARD_COUNT) throw new ShardError("JOB_COMPLETION_INDEX is set but SANDBOX_RUN_SHARD_COUNT is not: set it to the Job's completions");
    return parseShard(`${Number(env.JOB_COMPLETION_INDEX) + 1}/${env.SANDBOX_RUN_SHARD_COUNT}`, 'JOB_COMPLETION_INDEX');
  }
  return undefined;
}

/**
 * Shard mode: this machine runs `parallel` sandboxes; sandbox i (1-based)
 * gets global shard ((k-1) * parallel + i) of (M * parallel), so machines and
 * sandboxes together cover every shard exactly once.
 */
export function sandboxShards(machine: Shard, parallel: number): Shard[] {
  const count = machine.count * parallel;
  return Array.from({ length: parallel }, (_, i) => ({ index: (machine.index - 1) * parallel + i + 1, count }));
}

/** Queue mode: this machine's items, round-robin over the sorted list so every item runs exactly once across machines. */
export function itemsForMachine<T>(items: readonly T[], machine: Shard): T[] {
  return items.filter((_, i) => i % machine.count === machine.index - 1);
}

export const formatShard = (shard: Shard): string => `${shard.index}/${shard.count}`;
