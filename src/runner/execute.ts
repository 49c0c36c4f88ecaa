import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { ExitCode, helperReason } from '../errors.js';
import { processRunDir } from '../kept/runs.js';
import type { SandboxPool } from '../pool/pool.js';
import { removeTree } from '../process/sweep.js';
import { workdirMountPoint } from '../sandbox/mounts.js';
import { parseSize, type SandboxOptions } from '../sandbox/options.js';
import { sandboxReport, spawn } from '../sandbox/run.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { defaultSizes, formatSize } from '../sandbox/size-budget.js';
import { unmappedHint } from '../sandbox/unmapped.js';
import type { Job, JobResult } from './job.js';
import { jobSignal } from './job-signal.js';
import { keepPooled, reportDeath, serviceDeath, startFailure } from './keep.js';

export interface ExecuteOptions {
  sandbox: SandboxOptions;
  /** With services or presets: warm sandboxes with services ready come from this pool. */
  pool?: SandboxPool;
  timeoutMs?: number;
  /** With --keep-failed: where each job's writable layer lives until it passes (with a pool: where failed sandboxes are kept). */
  keepDir?: string;
  signal: AbortSignal;
  onOutput?: (job: Job, chunk: string) => void;
}

/**
 * Where a job's copy-on-write writes go. By default a tmpfs that vanishes
 * with the sandbox; with --keep-failed a directory on disk, so a failed
 * job's writes can be inspected with `sandbox-run diff`.
 */
function sandboxOptionsFor(job: Job, options: ExecuteOptions): { sandbox: SandboxOptions; kept?: string } {
  const env = { ...options.sandbox.env, ...job.env };
  // The job's own binds (its runner's report directory) reach its sandbox alone.
  const binds = job.binds ? { binds: [...(options.sandbox.binds ?? []), ...job.binds] } : {};
  if (!options.keepDir || (options.sandbox.workdir ?? 'cow') !== 'cow') return { sandbox: { ...options.sandbox, env, ...binds } };
  const kept = join(options.keepDir, String(job.id));
  mkdirSync(join(kept, 'upper'), { recursive: true });
  mkdirSync(join(kept, 'work'), { recursive: true });
  const cwd = workdirMountPoint(options.sandbox.cwd ?? process.cwd());
  // What `sandbox-run diff` compares the kept layer against.
  writeFileSync(join(kept, 'kept.json'), `${JSON.stringify({ lower: [cwd], target: cwd, label: job.label, command: job.command }, null, 2)}\n`);
  return { sandbox: { ...options.sandbox, env, ...binds, workdirLayer: { upper: join(kept, 'upper'), work: join(kept, 'work') } }, kept };
}

/** A failed job that ran out of room in its tmpfs gets the fix in its summary line. */
function noSpaceHint(output: string, sandbox: SandboxOptions): string | undefined {
  if (!/No space left on device|ENOSPC/.test(output)) return undefined;
  const defaults = defaultSizes(sandbox.concurrency);
  const size = (set: number | string | undefined, fallback: number) => formatSize(set === undefined ? fallback : parseSize(set, 'size'));
  return (
    `no space in the sandbox's writable layer (${size(sandbox.upperSize, defaults.upper)}) ` +
    `or /tmp (${size(sandbox.tmpfsSize, defaults.tmpfs)}): raise --upper-size or --tmpfs-size`
  );
}

/** A job whose process the OOM killer ended is told so, not left with a bare exit 137. */
function oomHint(sandbox: SandboxOptions): string {
  const mb = sandbox.memory === undefined ? '' : ` (${Math.round(parseSize(sandbox.memory, 'memory') / 2 ** 20)} MB)`;
  return `killed by the kernel's OOM killer: the sandbox reached its memory limit${mb}: raise --memory`;
}

/** Runs one job in its own sandbox and says how it went; never throws. */
export async function executeJob(job: Job, options: ExecuteOptions): Promise<JobResult> {
  const started = Date.now();
  const result = (status: JobResult['status'], exitCode: number | null, output: string, extra: Partial<JobResult> = {}): JobResult => ({
    job,
    status,
    exitCode,
    durationMs: Date.now() - started,
    output,
    ...extra,
  });
  let kept: string | undefined;
  let pooled: Sandbox | undefined;
  const signal = jobSignal(options.signal);
  try {
    const processOptions = {
      stdin: 'ignore',
      all: true,
      ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      cancelSignal: signal.signal,
      forceKillAfterDelay: 2000,
    } as const;
    let subprocess: ResultPromise<{ all: true }>;
    if (options.pool) {
      pooled = await options.pool.acquire({ signal: signal.signal });
      subprocess = pooled.spawn(job.command[0]!, job.command.slice(1), { ...processOptions, env: job.env }) as ResultPromise<{ all: true }>;
    } else {
      const prepared = sandboxOptionsFor(job, options);
      kept = prepared.kept;
      subprocess = spawn(job.command[0]!, job.command.slice(1), { ...prepared.sandbox, ...processOptions }) as ResultPromise<{ all: true }>;
    }
    subprocess.all?.on('data', (chunk: Buffer) => options.onOutput?.(job, chunk.toString()));
    const done = await subprocess;
    const oomKilled = !pooled && (await sandboxReport(subprocess)).oomKills > 0;
    const output = typeof done.all === 'string' ? done.all : '';
    const setupFailed = done.exitCode === ExitCode.setup && /^sandbox-run: /m.test(output);
    // A service that died under the test fails it, with its log tail (the whole log on the host).
    const death = pooled && !done.isCanceled ? serviceDeath(pooled) : undefined;
    const status: JobResult['status'] = done.isCanceled
      ? 'cancelled'
      : done.timedOut
        ? 'timed out'
        : setupFailed
          ? 'setup failed'
          : done.exitCode === 0 && !death
            ? 'passed'
            : 'failed';
    const keep = kept && (status === 'failed' || status === 'timed out');
    const hint =
      status !== 'failed' ? undefined : oomKilled ? oomHint(options.sandbox) : (noSpaceHint(output, options.sandbox) ?? unmappedHint(options.sandbox, output));
    // A kept layer needs its upper only; overlayfs's work dir (a mode 000 inside) goes either way.
    if (kept) removeTree(keep ? join(kept, 'work') : kept);
    let keptPooled: { dir: string; note?: string } | undefined;
    if (pooled && options.keepDir && (status === 'failed' || status === 'timed out'))
      keptPooled = await keepPooled(pooled, job, options.keepDir, status, done.exitCode ?? null);
    const deathError = death && pooled ? reportDeath(pooled, death, options.keepDir ?? processRunDir(), job, keptPooled?.dir) : undefined;
    if (keptPooled?.note) console.error(`sandbox-run: ${keptPooled.note}`);
    return result(status, done.exitCode ?? null, output, {
      ...(keep ? { kept } : keptPooled ? { kept: keptPooled.dir } : {}),
      ...(setupFailed ? { error: helperReason(output) } : deathError ? { error: deathError } : hint ? { error: hint } : {}),
    });
  } catch (error) {
    if (kept) removeTree(kept);
    if (options.signal.aborted) return result('cancelled', null, '');
    const serviceLog = startFailure(error, options.keepDir ?? processRunDir(), job);
    return result('setup failed', null, '', { error: serviceLog ?? (error as Error).message.split('\n')[0]!, output: (error as Error).message });
  } finally {
    signal.done();
    await pooled?.dispose();
  }
}
