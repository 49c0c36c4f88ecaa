import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { Job } from './job.js';

/*
 * What the runner keeps of a failed job that ran in a pooled sandbox (with
 * services): the whole sandbox with --keep-failed, and in any case the log
 * of a service that failed, on the host under the run's directory.
 */

const indent = (text: string) =>
  text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');

/** Saves a service's whole log as <run>/<job>/logs/NAME.log. */
function saveLog(runDir: string, job: Job, service: string, text: string): string {
  const dir = join(runDir, String(job.id), 'logs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${service}.log`);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** "service X ...; whole log: FILE; last lines:" and the tail, indented: what the summary shows. */
function withHostLog(message: string, file: string): string {
  const [head = '', ...tail] = message.split('\n');
  const line = head.replace(/; last lines of \S+:$/, '');
  return `${line}; whole log: ${file}${tail.length ? `; last lines:\n${indent(tail.join('\n'))}` : ''}`;
}

/** A sandbox that could not start because a service failed: its log goes to the host, the message says where. */
export function startFailure(error: unknown, runDir: string, job: Job): string | undefined {
  if (!(error instanceof SandboxError) || !error.details.log) return undefined;
  const { service, text } = error.details.log;
  return withHostLog(error.message, saveLog(runDir, job, service, text));
}

/** A service that died while the job ran: its tail for the summary; its whole log on the host (in the kept run, when kept). */
export function serviceDeath(sb: Sandbox): { service: string; message: string } | undefined {
  for (const service of sb.services) {
    const message = service.failure();
    if (message) return { service: service.spec.name, message };
  }
  return undefined;
}

/** The summary's line for a service death; the log is saved unless the kept run (`keptDir`) has it already. */
export function reportDeath(sb: Sandbox, death: { service: string; message: string }, runDir: string, job: Job, keptDir?: string): string {
  if (keptDir) return withHostLog(death.message, join(keptDir, 'logs', `${death.service}.log`));
  const service = sb.services.find((s) => s.spec.name === death.service)!;
  return withHostLog(death.message, saveLog(runDir, job, death.service, service.log()));
}

/** Keeps a failed job's pooled sandbox in <run>/<job id>; returns its directory and a line about caps. */
export async function keepPooled(sb: Sandbox, job: Job, runDir: string, status: string, exitCode: number | null): Promise<{ dir: string; note?: string }> {
  // A retried job may be kept more than once: 3, 3-2, ...
  let name = String(job.id);
  for (let n = 2; existsSync(join(runDir, name)); n++) name = `${job.id}-${n}`;
  const kept = await sb.keep({ label: job.label, command: job.command, env: job.env, status, exitCode, dir: join(runDir, name) });
  const note = kept.evicted.length
    ? `removed ${kept.evicted.length} older kept run(s) beyond the cap (SANDBOX_RUN_KEEP_MAX, SANDBOX_RUN_KEEP_MAX_SIZE)`
    : undefined;
  return { dir: kept.dir, ...(note ? { note } : {}) };
}
