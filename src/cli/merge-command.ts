import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { writeJUnit } from '../runner/junit.js';
import { lastFailedPath, learnFrom } from '../runner/learn.js';
import { MergeError, mergeSummaries, readSummaryFile } from '../runner/merge.js';
import { exitCodeOf, formatSummary } from '../runner/summary.js';
import { defaultTimingsPath, TimingsError } from '../runner/timings.js';
import { UsageError } from './usage-error.js';

interface MergeArgs {
  files: string[];
  junit?: string;
  json?: string;
  timings?: string | false;
  noTimings?: boolean;
  failOnFlaky?: boolean;
  cwd?: string;
}

/**
 * `sandbox-run merge A.json B.json ...`: the --json summaries of M machines
 * as one run: one table, one exit code (the same rule as a run), JUnit and
 * JSON for all, and one update of the timings and last-failed files.
 */
export function mergeCommand(done: (exitCode: number) => void): CommandModule<object, MergeArgs> {
  return {
    command: 'merge <files..>',
    describe: "Combine machines' --json summaries: one summary, exit code, JUnit report and timings update",
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true, describe: 'Summaries written by --json FILE' })
        .option('junit', { type: 'string', describe: 'Write JUnit XML of all of them to FILE', requiresArg: true })
        .option('json', { type: 'string', describe: 'Write the merged summary as JSON to FILE', requiresArg: true })
        .option('timings', { type: 'string', describe: 'Timings file to update (default .sandbox-run/timings.json at the project root)', requiresArg: true })
        .option('no-timings', { type: 'boolean', describe: 'Do not update timings' })
        .option('fail-on-flaky', { type: 'boolean', describe: 'Exit 1 when anything was flaky' })
        .option('cwd', { type: 'string', describe: 'Project directory whose .sandbox-run/ is updated (default: the current one)', requiresArg: true }) as never,
    handler: (args) => {
      try {
        const files = args.files.map(String);
        const summaries = files.map(readSummaryFile);
        const merged = mergeSummaries(summaries, files);
        const cwd = resolve(args.cwd ?? process.cwd());
        // yargs gives [FILE, false] for `--timings FILE --no-timings`: the opt-out wins.
        const given = [args.timings ?? []].flat();
        const file = given.filter((v): v is string => typeof v === 'string').at(-1);
        const timings = args.noTimings || given.includes(false) ? undefined : file ? resolve(file) : defaultTimingsPath(cwd);
        console.log(formatSummary(merged));
        if (args.json) writeFileSync(args.json, `${JSON.stringify(merged, null, 2)}\n`);
        if (args.junit) writeJUnit(args.junit, merged);
        learnFrom(summaries, { ...(timings ? { timings } : {}), lastFailed: lastFailedPath(timings ?? defaultTimingsPath(cwd)) });
        done(exitCodeOf(merged.results, Boolean(args.failOnFlaky)));
      } catch (error) {
        if (error instanceof MergeError || error instanceof TimingsError) throw new UsageError(error.message);
        throw error;
      }
    },
  };
}
