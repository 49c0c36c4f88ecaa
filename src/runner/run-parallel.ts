import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runsDir } from '../kept/runs.js';
import { createPool } from '../pool/pool.js';
import type { Preset } from '../presets/types.js';
import type { SandboxOptions } from '../sandbox/options.js';
import type { ServiceSpec } from '../services/types.js';
import { executeJob } from './execute.js';
import { withFileResults } from './file-results.js';
import { writeJUnit } from './junit.js';
import { lastFailedPath, readLastFailed } from './last-failed.js';
import { learnFrom } from './learn.js';
import { listTestFiles } from './list-files.js';
import { planJobs } from './plan.js';
import { createReporter, type OutputMode } from './report.js';
import { withRetries } from './retries.js';
import { schedule } from './schedule.js';
import { formatShard, type Shard } from './shard.js';
import { sharedCacheBinds } from './shared-caches.js';
import { exitCodeOf, formatSummary, type RunSummary, summarize } from './summary.js';
import { defaultTimingsPath, readTimings, suiteTimings } from './timings.js';

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
  /** The timings file; undefined with --no-timings. */
  timingsFile?: string;
  /** Run only what failed last time. */
  lastFailed?: boolean;
  /** Run a failed job again, each time in a fresh sandbox, up to this many times. */
  retries?: number;
  /** A flaky job fails the run. */
  failOnFlaky?: boolean;
  junitFile?: string;
  /** Shard mode: run the whole command in every sandbox even though nothing splits it. */
  replicate?: boolean;
  /** Bind the project's test-runner caches (shared-caches.ts) into every sandbox. Default: true. */
  sharedCaches?: boolean;
}

/**
 * `sandbox-run --parallel N [--each GLOB] -- CMD`: plans the jobs, runs them
 * N at a time, reports as they end, prints one summary and returns one exit
 * code (130 when interrupted).
 */
export async function runParallel(options: ParallelRunOptions): Promise<{ exitCode: number; summary: RunSummary }> {
  const cwd = options.sandbox.cwd ?? process.cwd();
  const started = Date.now();
  const withServices = Boolean(options.services?.length || options.presets?.length);
  const timings = options.timingsFile ? readTimings(options.timingsFile) : undefined;
  const lastFailedFile = lastFailedPath(options.timingsFile ?? defaultTimingsPath(cwd));
  // Runners' per-file reports need a bind per sandbox, which warm pooled sandboxes cannot take.
  const reportDir = withServices ? undefined : mkdtempSync(join(tmpdir(), 'sandbox-run-reports-'));
  const plan = await planJobs({
    command: options.command,
    cwd,
    parallel: options.parallel,
    machine: options.machine,
    ...(options.each ? { each: options.each } : {}),
    ...(timings ? { timingsFor: (suite: string) => suiteTimings(timings, suite) } : {}),
    ...(options.lastFailed ? { lastFailedFor: (suite: string) => readLastFailed(lastFailedFile, suite) } : {}),
    ...(options.replicate ? { replicate: true } : {}),
    ...(reportDir ? { reportDir } : {}),
    listFiles: (detection) => listTestFiles(detection, { concurrency: options.parallel, ...options.sandbox }, new AbortController().signal),
  }).catch((error: unknown) => {
    if (reportDir) rmSync(reportDir, { recursive: true, force: true });
    throw error;
  });
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
  // One cache directory per tool for the whole run, kept for the next (shared-caches.ts).
  const cacheBinds = options.sharedCaches === false ? [] : sharedCacheBinds(options.sandbox);
  const sandbox = {
    concurrency: options.parallel,
    ...options.sandbox,
    ...(cacheBinds.length ? { binds: [...(options.sandbox.binds ?? []), ...cacheBinds] } : {}),
  };
  const pool = withServices
    ? await createPool({
        ...sandbox,
        services: options.services ?? [],
        presets: options.presets ?? [],
        size: Math.min(options.parallel, plan.jobs.length),
        max: options.parallel,
        // One sandbox per job: no replacement is started after the last job took its own (retries start theirs then).
        ...(process.env.SANDBOX_RUN_POOL_REFILL === 'always' ? {} : { total: plan.jobs.length }),
        // --keep-failed: every writable layer on disk, so a failed sandbox can be kept whole (its database too).
        keepable: options.keepFailed,
      })
    : undefined;
  const reporter = createReporter(options.output, plan.jobs.length, options.live);
  let results;
  try {
    results = await schedule(plan.jobs, {
      parallel: options.parallel,
      failFast: options.failFast,
      controller,
      run: withRetries(
        async (job) =>
          withFileResults(
            await executeJob(job, {
              sandbox,
              signal: controller.signal,
              onOutput: (j, chunk) => reporter.output(j, chunk),
              ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
              ...(keepDir ? { keepDir } : {}),
              ...(pool ? { pool } : {}),
            }),
            plan.runner,
            cwd,
          ),
        options.retries ?? 0,
        { signal: controller.signal, onRetry: (failed, next) => reporter.retrying(failed, next, (options.retries ?? 0) + 1) },
      ),
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
    if (reportDir) rmSync(reportDir, { recursive: true, force: true });
  }

  const summary = summarize(results, {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    parallel: options.parallel,
    machine: formatShard(options.machine),
    suite: plan.suite,
    ...(plan.universe ? { universe: plan.universe } : {}),
  });
  console.log(`\n${formatSummary(summary)}`);
  if (options.jsonFile) writeFileSync(options.jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
  if (options.junitFile) writeJUnit(options.junitFile, summary);
  // An interrupted run measured nothing worth averaging in.
  // --no-timings writes nothing into the project. One machine of M leaves the timings to `merge`: every
  // machine must split from the same file, and one that rewrote it after its slice would split differently.
  if (!interrupted && options.timingsFile)
    learnFrom([summary], { ...(options.machine.count === 1 ? { timings: options.timingsFile } : {}), lastFailed: lastFailedFile });
  if (options.timingsFile && options.machine.count > 1)
    console.error(
      `sandbox-run: machine ${formatShard(options.machine)} of a split run: timings not updated here; ` +
        "`sandbox-run merge` of every machine's --json updates them",
    );
  return { exitCode: interrupted ? 130 : exitCodeOf(results, options.failOnFlaky), summary };
}
