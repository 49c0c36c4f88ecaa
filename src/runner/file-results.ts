import { rmSync } from 'node:fs';
import type { JobResult } from './job.js';
import { readReport } from './runner-files.js';
import type { TestRunner } from './test-command.js';

/**
 * Adds the runner's per-file results to a job's result and removes the
 * report, so a retry that crashes before writing one is not credited with
 * this attempt's.
 */
export function withFileResults(result: JobResult, runner: TestRunner | undefined, cwd: string): JobResult {
  const path = result.job.reportFile;
  if (!path || !runner) return result;
  const files = readReport(runner, path, cwd);
  rmSync(path, { force: true });
  return files ? { ...result, files } : result;
}
