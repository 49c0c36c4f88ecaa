import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ResultPromise } from 'execa';
import type { Argv } from 'yargs';
import { mergeOptions } from '../config/apply.js';
import { findConfig, type LoadedConfig, loadConfig } from '../config/load.js';
import type { LoadedSandboxRunConfig } from '../config/types.js';
import { imageStack } from '../layers/image-stack.js';
import { PlanError } from '../runner/plan.js';
import type { OutputMode } from '../runner/report.js';
import { runParallel } from '../runner/run-parallel.js';
import { parseShard, type Shard, ShardError, shardFromEnv } from '../runner/shard.js';
import { defaultTimingsPath, TimingsError } from '../runner/timings.js';
import { createSandbox } from '../sandbox/create.js';
import { planLaunch } from '../sandbox/launch.js';
import type { SandboxOptions } from '../sandbox/options.js';
import { toSandboxResult } from '../sandbox/process.js';
import { spawn } from '../sandbox/run.js';
import { unmappedHint } from '../sandbox/unmapped.js';
import { optionsFromFlags, type SandboxFlags } from './sandbox-flags.js';
import { UsageError } from './usage-error.js';

export { sandboxFlags } from './sandbox-flags.js';

/** The flags of the parallel runner (shard and queue modes). */
export function runnerFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('parallel', {
      alias: 'p',
      type: 'string',
      group: 'Parallel:',
      describe: 'Run N sandboxes at once, each with its shard (N defaults to the number of cores)',
    })
    .option('each', {
      type: 'string',
      group: 'Parallel:',
      describe: 'Queue mode: one fresh sandbox per file matching GLOB ({} in CMD is the file)',
      requiresArg: true,
    })
    .option('shard', {
      type: 'string',
      group: 'Parallel:',
      describe: "This machine's slice k/M (also from CI_NODE_INDEX/CI_NODE_TOTAL or JOB_COMPLETION_INDEX)",
      requiresArg: true,
    })
    .option('output', {
      type: 'string',
      choices: ['grouped', 'prefixed', 'quiet'],
      group: 'Parallel:',
      describe: 'grouped (default): whole output per sandbox when it ends; prefixed: live lines; quiet: summary only',
    })
    .option('json', { type: 'string', group: 'Parallel:', describe: 'Write the summary as JSON to FILE', requiresArg: true })
    .option('keep-failed', { type: 'boolean', group: 'Parallel:', describe: "Keep failed sandboxes' writable layers for `sandbox-run diff`" })
    .option('timeout', { type: 'string', group: 'Parallel:', describe: 'Stop a sandbox after DURATION (e.g. 90s, 10m)', requiresArg: true })
    .option('fail-fast', { type: 'boolean', group: 'Parallel:', describe: 'Stop everything at the first failure' })
    .option('timings', {
      type: 'string',
      group: 'Parallel:',
      describe: 'Timings file for longest-first order and timed shards (default .sandbox-run/timings.json at the project root)',
      requiresArg: true,
    })
    .option('no-timings', { type: 'boolean', group: 'Parallel:', describe: 'Neither read nor write timings' })
    .option('retries', {
      type: 'string',
      group: 'Parallel:',
      describe: 'Run a failed item or shard again up to N times, each in a fresh sandbox; passing on a retry is flaky',
      requiresArg: true,
    })
    .option('fail-on-flaky', { type: 'boolean', group: 'Parallel:', describe: 'Exit 1 when anything was flaky (default: flaky passes)' })
    .option('last-failed', { type: 'boolean', group: 'Parallel:', describe: "Run only what failed in this suite's previous run" })
    .option('junit', { type: 'string', group: 'Parallel:', describe: 'Write JUnit XML to FILE (one test case per item or shard)', requiresArg: true })
    .option('replicate', { type: 'boolean', group: 'Parallel:', describe: 'Shard mode: run the whole command in every sandbox even though nothing splits it' })
    .option('shared-caches', {
      type: 'boolean',
      group: 'Parallel:',
      describe: "Share test-runner caches (Jest's) between sandboxes and runs (default; --no-shared-caches: each sandbox a fresh one)",
    })
    .option('config', {
      type: 'string',
      group: 'Config:',
      describe: 'Config file (default: sandbox.config.{ts,mts,js,mjs,json} found upward)',
      requiresArg: true,
    })
    .option('no-config', { type: 'boolean', group: 'Config:', describe: 'Ignore config files' });
}

interface RunArgs extends SandboxFlags {
  command?: string[];
  '--'?: string[];
  printHelperArgs?: boolean;
  parallel?: string;
  each?: string;
  shard?: string;
  output?: string;
  json?: string;
  keepFailed?: boolean;
  timeout?: string;
  failFast?: boolean;
  timings?: string | false;
  noTimings?: boolean;
  retries?: string;
  failOnFlaky?: boolean;
  lastFailed?: boolean;
  junit?: string;
  replicate?: boolean;
  sharedCaches?: boolean;
  config?: string | false;
  noConfig?: boolean;
}

/** The config file in effect: --config FILE, none with --no-config, else the nearest one. */
async function configFor(args: RunArgs, cwd: string): Promise<LoadedConfig | undefined> {
  if (args.noConfig || args.config === false) return undefined;
  const path = args.config ? resolve(args.config) : findConfig(cwd);
  if (args.config && !existsSync(path!)) throw new UsageError(`--config '${args.config}' does not exist`);
  return path ? loadConfig(path) : undefined;
}

/** '90', '90s', '10m', '1h' -> milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--timeout '${text}': expected a duration such as 90s or 10m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's']!;
  return Math.round(Number(match[1]) * unit);
}

function parseParallel(text: string | undefined, fromConfig: number | undefined): number {
  if (text === undefined || text === '') return fromConfig ?? availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--parallel '${text}': expected a number of sandboxes (use --parallel=N before the command)`);
  return n;
}

function parseRetries(text: string | undefined): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--retries '${text}': expected a number of retries such as 2`);
  return n;
}

/** The timings file in effect: --timings FILE, none with --no-timings, else the project's. */
function timingsFileFor(args: RunArgs, cwd: string): string | undefined {
  // yargs gives [FILE, false] for `--timings FILE --no-timings`: the opt-out wins.
  const given = [args.timings ?? []].flat();
  if (args.noTimings || given.includes(false)) return undefined;
  const file = given.filter((v): v is string => typeof v === 'string').at(-1);
  return file ? resolve(file) : defaultTimingsPath(cwd);
}

function machineShard(args: RunArgs): Shard {
  try {
    return args.shard ? parseShard(args.shard) : (shardFromEnv(process.env) ?? { index: 1, count: 1 });
  } catch (error) {
    if (error instanceof ShardError) throw new UsageError(error.message);
    throw error;
  }
}

/** Whether the live status panel fits: a terminal, not CI, colours allowed. */
function liveDisplay(): boolean {
  return Boolean(process.stderr.isTTY && !process.env.CI && !process.env.NO_COLOR);
}

/** What `docker run IMAGE` runs without a command: the image's Entrypoint and Cmd. */
function imageCommand(ref: string): string[] {
  const config = imageStack(ref).config;
  const command = [...(config?.Entrypoint ?? []), ...(config?.Cmd ?? [])];
  if (command.length === 0) throw new UsageError(`no command given, and image ${ref} has no Entrypoint or Cmd: sandbox-run --image ${ref} -- CMD [ARGS...]`);
  return command;
}

/** `sandbox-run [options] -- CMD [ARGS...]`: one sandbox, its output streamed, its exit status ours. */
export async function runCommand(args: RunArgs): Promise<number> {
  const given = [...(args.command ?? []), ...(args['--'] ?? [])].map(String);
  const flags = optionsFromFlags(args);
  if (given.length === 0 && !flags.image) throw new UsageError('no command given: sandbox-run [options] -- CMD [ARGS...]');
  const loaded = await configFor(args, flags.cwd ?? process.cwd());
  const options = mergeOptions(loaded, flags);
  const command = given.length ? given : imageCommand(options.image!);
  const config = loaded?.config ?? {};
  if (args.printHelperArgs) {
    // The plan's own command: with the copy fallback, disk uppers and --cgroup as they would run.
    console.log(JSON.stringify(planLaunch({ concurrency: 1, ...options }, command).argv));
    return 0;
  }
  const parallel = args.parallel !== undefined || args.each !== undefined || args.shard !== undefined;
  const runnerOnly = (['retries', 'failOnFlaky', 'lastFailed', 'junit', 'replicate'] as const).find((name) => args[name] !== undefined);
  if (!parallel && runnerOnly) throw new UsageError(`--${runnerOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --parallel, --each or --shard`);
  if (parallel) {
    const timingsFile = timingsFileFor(args, options.cwd ?? process.cwd());
    const { exitCode } = await runParallel({
      command,
      sandbox: options,
      parallel: parseParallel(args.parallel ?? (args.each === undefined && args.shard !== undefined ? '1' : undefined), config.parallel),
      machine: machineShard(args),
      output: (args.output ?? config.output ?? 'grouped') as OutputMode,
      live: liveDisplay(),
      keepFailed: Boolean(args.keepFailed),
      failFast: Boolean(args.failFast),
      ...(args.each !== undefined ? { each: args.each } : {}),
      ...(args.json !== undefined ? { jsonFile: args.json } : {}),
      ...(timingsFile ? { timingsFile } : {}),
      ...(args.junit !== undefined ? { junitFile: resolve(args.junit) } : {}),
      retries: parseRetries(args.retries),
      failOnFlaky: Boolean(args.failOnFlaky),
      lastFailed: Boolean(args.lastFailed),
      replicate: Boolean(args.replicate),
      // The flag (--no-shared-caches is sharedCaches: false) over the config key over the default, on.
      sharedCaches: args.sharedCaches ?? config.sharedCaches ?? true,
      ...(config.services ? { services: config.services } : {}),
      ...(config.presets ? { presets: config.presets } : {}),
      ...((args.timeout ?? config.timeout) !== undefined ? { timeoutMs: parseDuration(String(args.timeout ?? config.timeout)) } : {}),
    }).catch((error: unknown) => {
      // A command nothing splits and an unreadable timings file are the caller's to fix: one line, exit 2.
      if (error instanceof PlanError || error instanceof TimingsError) throw new UsageError(error.message);
      throw error;
    });
    return exitCode;
  }
  if (config.services?.length || config.presets?.length) return runWithServices(command, options, config);
  return unmappedNote(await exitCodeOf(command, spawn(command[0]!, command.slice(1), { concurrency: 1, ...options, stdio: 'inherit' })), options);
}

/**
 * Waits for the sandboxed command and returns its exit code. Ctrl-C reaches
 * the sandbox through the terminal's process group; other signals sent to
 * us alone are forwarded.
 */
async function exitCodeOf(command: string[], subprocess: ResultPromise): Promise<number> {
  const forward = (signal: NodeJS.Signals) => subprocess.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const signal of signals) process.on(signal, forward);
  try {
    return toSandboxResult(command, await subprocess).exitCode;
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}

/** One sandbox with the config's services ready before the command starts. */
async function runWithServices(command: string[], options: SandboxOptions, config: LoadedSandboxRunConfig): Promise<number> {
  await using sandbox = await createSandbox({ concurrency: 1, ...options, services: config.services ?? [], presets: config.presets ?? [] });
  // await: the sandbox is disposed when this block ends, not before the command does.
  return unmappedNote(await exitCodeOf(command, sandbox.spawn(command[0]!, command.slice(1), { stdio: 'inherit' })), options);
}

/**
 * A failed command whose copy-on-write tree holds files the sandbox cannot
 * map hears which and the fix. Its output went straight to the terminal, so
 * the tree is checked instead (bounded: a failed run waits at most 0.5 s).
 */
function unmappedNote(exitCode: number, options: SandboxOptions): number {
  if (exitCode === 0 || exitCode >= 128) return exitCode;
  const hint = unmappedHint(options, undefined, { found: 20, entries: 100_000, ms: 500 });
  if (hint) console.error(`sandbox-run: ${hint}`);
  return exitCode;
}
