import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import { formatDuration } from './format.js';
import type { Job } from './job.js';
import { lptSplit, predict } from './lpt.js';
import { longestFirst } from './order.js';
import { fileArgs, REPORT_DIR_INSIDE, reportArgs } from './runner-files.js';
import { formatShard, itemsForMachine, type Shard, sandboxShards } from './shard.js';
import { type Detection, detectTestRunner, splitsItself, substitute, type TestRunner, withShardFlag } from './test-command.js';
import { suiteKey } from './timings.js';

export interface PlanInput {
  command: string[];
  cwd: string;
  parallel: number;
  /** This machine's slice (1/1 when not split across machines). */
  machine: Shard;
  /** Queue mode: every file matching this glob gets its own sandbox. */
  each?: string;
  /** Measured durations of a suite's items (empty: none yet, or --no-timings). */
  timingsFor?: (suite: string) => ReadonlyMap<string, number>;
  /** --last-failed: the items, files or shard labels of a suite that failed last time (undefined: no record). */
  lastFailedFor?: (suite: string) => readonly string[] | undefined;
  timings?: ReadonlyMap<string, number>;
  lastFailed?: readonly string[];
  /** --replicate: run the whole command in every sandbox, knowingly. */
  replicate?: boolean;
  /** Per-job directories for the runners' JSON reports go here (not with a warm pool: its sandboxes cannot take a bind each). */
  reportDir?: string;
  /** Asks the runner for its test files (in a sandbox); undefined when it cannot say. */
  listFiles?: (detection: Detection) => Promise<string[] | undefined>;
}

export interface Plan {
  jobs: Job[];
  /** What the runner does on the user's behalf, said once at the start. */
  notes: string[];
  /** Names this way of running the tests in the timings and last-failed files. */
  suite: string;
  /** Every item of the suite when known (queue: the glob's matches; shard mode: the runner's listing): timings of others are dropped. */
  universe?: string[];
  /** Shard mode: the test runner whose JSON reports the jobs write. */
  runner?: TestRunner;
}

export class PlanError extends Error {
  override readonly name = 'PlanError';
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

/** The runner writes a JSON report into a directory bound into this job's sandbox alone. */
function withReport(job: Job, reportDir: string | undefined, detection: Detection | undefined): Job {
  if (!reportDir || !detection) return job;
  const source = join(reportDir, String(job.id));
  mkdirSync(source, { recursive: true });
  const report = reportArgs(detection);
  return {
    ...job,
    command: detection.withArgs(job.command, report.args),
    env: { ...job.env, ...report.env },
    binds: [{ source, target: REPORT_DIR_INSIDE, readonly: false }],
    reportFile: join(source, 'report.json'),
  };
}

const seconds = (ms: number) => formatDuration(Math.round(ms));

/** Count-based: shard i/N per sandbox, the flag handed to a known runner. */
function countShardJobs(input: PlanInput, detection: Detection | undefined): Job[] {
  return sandboxShards(input.machine, input.parallel).map((shard, i) => {
    const text = formatShard(shard);
    const base = substitute(input.command, { shard: text });
    const job: Job = {
      id: i + 1,
      label: `shard ${text}`,
      command: detection ? withShardFlag(base, detection, text) : base,
      env: shardEnv(shard, i + 1),
      shard,
    };
    return withReport(job, input.reportDir, detection);
  });
}

/**
 * Timed: the runner's files packed into M x N sandboxes of near-equal
 * predicted time (the same split on every machine); this machine runs its N.
 */
function timedShardJobs(input: PlanInput, detection: Detection, files: string[], notes: string[]): Job[] | undefined {
  const weights = predict(files, input.timings ?? new Map());
  if (!weights) return undefined;
  const total = input.machine.count * input.parallel;
  const bins = lptSplit(weights, total);
  const mine = bins.slice((input.machine.index - 1) * input.parallel, input.machine.index * input.parallel);
  const jobs = mine
    .map((bin, i) => ({ bin, shard: { index: (input.machine.index - 1) * input.parallel + i + 1, count: total } }))
    // An empty file list would make the runner run everything.
    .filter(({ bin }) => bin.items.length > 0)
    .map(({ bin, shard }, i): Job => {
      const text = formatShard(shard);
      const base = substitute(input.command, { shard: text });
      const job: Job = {
        id: i + 1,
        label: `shard ${text}`,
        command: detection.withArgs(base, fileArgs(detection.runner, bin.items)),
        env: shardEnv(shard, i + 1),
        shard,
        files: bin.items,
      };
      return withReport(job, input.reportDir, detection);
    });
  const max = Math.max(...bins.map((b) => b.ms));
  const here = mine.map((b) => seconds(b.ms)).join(', ');
  notes.push(
    `${detection.via} runs ${detection.runner}: passing each sandbox its test files, split by measured time ` +
      `(${files.length} files into ${total} sandboxes; predicted ${here} here, ${seconds(max)} at most) instead of --shard=i/N`,
  );
  return jobs;
}

async function shardPlan(input: PlanInput, suite: string): Promise<Plan> {
  const notes: string[] = [];
  const detection = detectTestRunner(input.command, input.cwd);
  const copies = input.machine.count * input.parallel;
  if (!detection && copies > 1 && !input.replicate && !splitsItself(input.command, input.cwd))
    throw new PlanError(
      `'${input.command.join(' ')}' runs no Vitest, Jest or Playwright that sandbox-run can split, so ${copies} sandboxes would each run all of it: ` +
        'use --each GLOB (a sandbox per file), {shard} in the command, split by $SANDBOX_SHARD, or --replicate to run copies on purpose',
    );
  const fileTimings = [...(input.timings?.keys() ?? [])].some((key) => !key.startsWith('shard '));
  let files = detection && fileTimings && input.listFiles ? await input.listFiles(detection) : undefined;
  let universe = files ? [...files] : undefined;
  if (files && input.lastFailed) files = files.filter((f) => input.lastFailed!.includes(f));
  let jobs = detection && files && files.length > 0 ? timedShardJobs(input, detection, files, notes) : undefined;
  if (!jobs) {
    jobs = countShardJobs(input, detection);
    // One machine, all shards: the labels are the whole suite (old ones, from another N, are dropped).
    if (!detection && input.machine.count === 1 && !input.lastFailed) universe ??= jobs.map((job) => job.label);
    if (input.lastFailed) jobs = jobs.filter((job) => input.lastFailed!.includes(job.label)).map((job, i) => ({ ...job, id: i + 1 }));
    notes.push(
      detection
        ? `${detection.via} runs ${detection.runner}: passing --shard=i/N to each sandbox${fileTimings ? '' : ' (no per-file timings yet: count-based)'}`
        : input.replicate
          ? `--replicate: every sandbox runs the whole command`
          : `each sandbox gets SANDBOX_SHARD=i/N (and SANDBOX_SHARD_INDEX, SANDBOX_SHARD_COUNT, SANDBOX_WORKER_ID); split the work by it`,
    );
  }
  return { jobs, notes, suite, ...(universe ? { universe } : {}), ...(detection ? { runner: detection.runner } : {}) };
}

async function queuePlan(input: PlanInput, pattern: string, suite: string): Promise<Plan> {
  const notes: string[] = [];
  const all = (await glob(pattern, { cwd: input.cwd, onlyFiles: true })).sort();
  const timings = input.timings ?? new Map<string, number>();
  const wanted = input.lastFailed ? all.filter((item) => input.lastFailed!.includes(item)) : all;
  let items = itemsForMachine(wanted, input.machine);
  const weights = input.machine.count > 1 ? predict(wanted, timings) : undefined;
  if (weights) {
    const bins = lptSplit(weights, input.machine.count);
    items = bins[input.machine.index - 1]!.items;
    notes.push(
      `machine ${formatShard(input.machine)}: items split by measured time ` +
        `(predicted ${seconds(bins[input.machine.index - 1]!.ms)} here, ${seconds(Math.max(...bins.map((b) => b.ms)))} at most)`,
    );
  }
  if (timings.size > 0) items = longestFirst(items, timings);
  const hasPlaceholder = input.command.some((arg) => arg.includes('{}'));
  const jobs = items.map((item, i): Job => {
    const command = substitute(input.command, { shard: formatShard(input.machine), item });
    return {
      id: i + 1,
      label: item,
      command: hasPlaceholder ? command : [...command, item],
      env: { ...shardEnv(input.machine, i + 1), SANDBOX_ITEM: item },
      shard: { index: i + 1, count: items.length },
      item,
    };
  });
  const machine = input.machine.count > 1 ? ` (machine ${formatShard(input.machine)})` : '';
  const order = timings.size > 0 ? ', longest first by measured time' : '';
  notes.unshift(`queue: ${jobs.length} item(s) matching ${pattern}${machine}, ${input.parallel} at a time${order}`);
  return { jobs, notes, suite, universe: all };
}

/** Turns the command line into jobs: N shards, or one job per matching item, in the order they should start. */
export async function planJobs(input: PlanInput): Promise<Plan> {
  const suite = suiteKey(input.cwd, input.each ? `each ${input.each} -- ${input.command.join(' ')}` : input.command.join(' '));
  const failed = input.lastFailedFor?.(suite);
  // Nothing recorded, or nothing failed: run everything (as pytest --lf does).
  const lastFailed = failed && failed.length > 0 ? failed : undefined;
  const notes: string[] =
    input.lastFailedFor && !lastFailed ? [`--last-failed: ${failed ? 'nothing failed' : 'no run recorded'} last time: running everything`] : [];
  input = { ...input, timings: input.timingsFor?.(suite) ?? new Map(), ...(lastFailed ? { lastFailed } : {}) };
  const plan = input.each ? await queuePlan(input, input.each, suite) : await shardPlan(input, suite);
  plan.notes.push(...notes);
  if (input.lastFailed) plan.notes.push(`--last-failed: running the ${plan.jobs.length} ${input.each ? 'item(s)' : 'shard(s)'} that failed last time`);
  return plan;
}
