import { mkdirSync, rmSync, writeFileSync, readdirSync, rmdirSync } from 'node:fs';
import { sandboxRunHome } from '../home.js';
import { join } from 'node:path';
import type { SandboxOptions } from '../sandbox/options.js';
import { createPool } from '../pool/pool.js';
import type { Preset } from '../presets/types.js';
import type { ServiceSpec } from '../services/types.js';
import { executeJob } from './execute.js';
import { planJobs } from './plan.js';
import { createReporter, type OutputMode } from './report.js';
import { schedule } from './schedule.js';
import { formatShard, type Shard } from './shard.js';
import { exitCodeOf, formatSummary, summarize, type RunSummary } from './summary.js';

export interface ParallelRunOptions {
  command: string[];
  sandbox: SandboxOptions;
  parallel: number;
  machine: Shard;
  each?: string;
  output: OutputMode;
  /** Live status panel (a terminal, not CI, no NO_COLOR). */
  live: boolean;
  jsonFile?: string;
  keepFailed: boolean;
  timeoutMs?: number;
  failFast: boolean;
  /** Services for every sandbox: then sandboxes come warm from a pool. */
  services?: ServiceSpec[];
  presets?: Preset[];
}

/** Kept runs live in the store (`sandbox-run prune` removes them). */
export function runsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(sandboxRunHome(env), 'runs');
}

/**
 * `sandbox-run --parallel N [--each GLOB] -- CMD`: plans the jobs, runs them
 * N at a time, reports as they end, prints one summary and returns one exit
 * code (130 when interrupted).
 */
export async function runParallel(options: ParallelRunOptions): Promise<{ exitCode: number; summary: RunSummary }> {
  const cwd = options.sandbox.cwd ?? process.cwd();
  const started = Date.now();
  const plan = await planJobs({ command: options.command, cwd, parallel: options.parallel, machine: options.machine, ...(options.each ? { each: options.each } : {}) });
  for (const note of plan.notes) console.error(`sandbox-run: ${note}`);

  const keepDir = options.keepFailed ? join(runsDir(), `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`) : undefined;
  if (keepDir) mkdirSync(keepDir, { recursive: true });

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // The default tmpfs sizes split the memory budget between the sandboxes that run at once.
  const sandbox = { concurrency: options.parallel, ...options.sandbox };
  const withServices = Boolean(options.services?.length || options.presets?.length);
  if (withServices && options.keepFailed) console.error('sandbox-run: --keep-failed keeps nothing for sandboxes with services (their writable layers live on tmpfs)');
  const pool = withServices
    ? await createPool({
        ...sandbox,
        services: options.services ?? [],
        presets: options.presets ?? [],
        size: Math.min(options.parallel, plan.jobs.length),
        max: options.parallel,
      })
    : undefined;
  const reporter = createReporter(options.output, plan.jobs.length, options.live);
  let results;
  try {
    results = await schedule(plan.jobs, {
      parallel: options.parallel,
      failFast: options.failFast,
      controller,
      run: (job) =>
        executeJob(job, {
          sandbox,
          signal: controller.signal,
          onOutput: (j, chunk) => reporter.output(j, chunk),
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
          ...(keepDir && !pool ? { keepDir } : {}),
          ...(pool ? { pool } : {}),
        }),
      onStart: (job, slot) => reporter.started(job, slot),
      onEnd: (result, slot) => reporter.ended(result, slot),
    });
  } finally {
    await pool?.close();
    reporter.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Nothing failed: no run directory worth keeping.
    if (keepDir && readdirSync(keepDir).length === 0) rmdirSync(keepDir);
  }

  const summary = summarize(results, {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    parallel: options.parallel,
    machine: formatShard(options.machine),
  });
  console.log(`\n${formatSummary(summary)}`);
  if (options.jsonFile) writeFileSync(options.jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
  return { exitCode: interrupted ? 130 : exitCodeOf(results), summary };
}

/** Removes kept runs; `prune` calls it. Returns what it removed. */
export function removeKeptRuns(env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = runsDir(env);
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  for (const entry of entries) rmSync(join(dir, entry), { recursive: true, force: true });
  return entries.map((entry) => join(dir, entry));
}
