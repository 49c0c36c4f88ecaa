import { createLogUpdate } from 'log-update';
import { formatDuration } from './format.js';
import type { Job, JobResult } from './job.js';

export type OutputMode = 'grouped' | 'prefixed' | 'quiet';

export interface Reporter {
  started(job: Job, slot: number): void;
  output(job: Job, chunk: string): void;
  ended(result: JobResult, slot: number): void;
  /** A failed attempt that will run again in a fresh sandbox (attempt `next` of `of`). */
  retrying(result: JobResult, next: number, of: number): void;
  /** Stops any live display; later writes are plain. */
  close(): void;
}

const MARK: Record<JobResult['status'], string> = {
  passed: 'PASS',
  flaky: 'FLKY',
  failed: 'FAIL',
  'timed out': 'TIME',
  'setup failed': 'ERR ',
  cancelled: 'SKIP',
};

/** A live panel on a terminal: counts, elapsed time and what each slot runs. */
class StatusPanel {
  readonly #render = createLogUpdate(process.stderr);
  readonly #running = new Map<number, { job: Job; since: number }>();
  readonly #started = Date.now();
  readonly #timer: NodeJS.Timeout;
  #passed = 0;
  #failed = 0;

  constructor(private readonly total: number) {
    this.#timer = setInterval(() => this.draw(), 200);
    this.#timer.unref();
  }

  start(job: Job, slot: number) {
    this.#running.set(slot, { job, since: Date.now() });
    this.draw();
  }

  end(result: JobResult, slot: number) {
    this.#running.delete(slot);
    if (result.status === 'passed' || result.status === 'flaky') this.#passed++;
    else if (result.status !== 'cancelled') this.#failed++;
    this.draw();
  }

  /** Writes text above the panel. */
  print(text: string) {
    this.#render.clear();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    this.draw();
  }

  draw() {
    const now = Date.now();
    const head =
      `running ${this.#running.size} · passed ${this.#passed} · failed ${this.#failed} · ` +
      `${this.total - this.#passed - this.#failed - this.#running.size} queued · ${formatDuration(now - this.#started)}`;
    const slots = [...this.#running.entries()]
      .sort(([a], [b]) => a - b)
      .map(([slot, { job, since }]) => `  slot ${slot}: ${job.label} (${formatDuration(now - since)})`);
    this.#render([head, ...slots].join('\n'));
  }

  close() {
    clearInterval(this.#timer);
    this.#render.clear();
    this.#render.done();
  }
}

/** Splits a stream of chunks into whole lines, per job. */
class LineBuffer {
  readonly #partial = new Map<number, string>();
  push(job: Job, chunk: string): string[] {
    const text = (this.#partial.get(job.id) ?? '') + chunk;
    const lines = text.split('\n');
    this.#partial.set(job.id, lines.pop()!);
    return lines;
  }
  flush(job: Job): string[] {
    const rest = this.#partial.get(job.id);
    this.#partial.delete(job.id);
    return rest ? [rest] : [];
  }
}

/**
 * grouped: each sandbox's output printed whole when it ends (never interleaved);
 * prefixed: live lines prefixed [3/50]; quiet: only the summary.
 * A terminal also gets a live status panel unless CI or NO_COLOR is set.
 */
export function createReporter(mode: OutputMode, total: number, live: boolean): Reporter {
  const panel = live ? new StatusPanel(total) : undefined;
  const print = (text: string) => (panel ? panel.print(text) : process.stdout.write(text.endsWith('\n') ? text : `${text}\n`));
  const lines = new LineBuffer();
  const prefix = (job: Job) => `[${job.id}/${total}] `;
  return {
    started(job, slot) {
      panel?.start(job, slot);
      if (mode === 'prefixed') print(`${prefix(job)}started ${job.label}: ${job.command.join(' ')}`);
    },
    output(job, chunk) {
      if (mode === 'prefixed') for (const line of lines.push(job, chunk)) print(`${prefix(job)}${line}`);
    },
    ended(result, slot) {
      panel?.end(result, slot);
      const head =
        `${MARK[result.status]} [${result.job.id}/${total}] ${result.job.label} ${result.status} in ${formatDuration(result.durationMs)}` +
        (result.exitCode !== null && result.status !== 'passed' ? ` (exit ${result.exitCode})` : '');
      if (mode === 'grouped') {
        const body = result.output.trimEnd();
        print(`── ${head}${body ? `\n${body}` : ''}${result.error ? `\n${result.error}` : ''}`);
      } else if (mode === 'prefixed') {
        for (const line of lines.flush(result.job)) print(`${prefix(result.job)}${line}`);
        print(`${prefix(result.job)}${head}`);
      }
    },
    retrying(result, next, of) {
      const head =
        `RTRY [${result.job.id}/${total}] ${result.job.label} ${result.status} in ${formatDuration(result.durationMs)}` +
        `${result.exitCode !== null ? ` (exit ${result.exitCode})` : ''}: attempt ${next} of ${of} in a fresh sandbox`;
      if (mode === 'grouped') {
        const body = result.output.trimEnd();
        print(`── ${head}${body ? `\n${body}` : ''}`);
      } else if (mode === 'prefixed') {
        for (const line of lines.flush(result.job)) print(`${prefix(result.job)}${line}`);
        print(`${prefix(result.job)}${head}`);
      }
    },
    close() {
      panel?.close();
    },
  };
}
