import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import { SandboxError } from '../errors.js';
import { INFO_FD, readHelperInfo } from '../process/info-fd.js';
import { stopProcess } from '../process/stop.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { listensOn, readInside, socketExists, tailOf } from './inspect.js';
import type { ServiceSpec } from './types.js';

/** Where services write their output inside the sandbox (its private /tmp). */
export const SERVICE_LOG_DIR = '/tmp/.sandbox-run';
/** Probes read /proc (cheap); a command probe starts a process each time, so it polls less often. */
const POLL_MS = 5;
const COMMAND_POLL_MS = 20;

/** PF_EXITING in /proc/PID/stat's flags: set from the moment a process starts to die, while its state may still read R. */
const PF_EXITING = 0x4;

/** Whether a /proc/PID/stat line shows a process that is dead or dying (a zombie, or killed and still exiting). */
function exiting(stat: string): boolean {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' || (Number(fields[6]) & PF_EXITING) !== 0;
}

/** A service running in a sandbox. */
/** A log pattern as a spec gives it: a RegExp, or its source (a kept run's JSON). */
function asRegExp(pattern: RegExp | string): RegExp {
  return typeof pattern === 'string' ? new RegExp(pattern) : pattern;
}

export class Service {
  readonly logFile: string;
  /** Host pid of the service's own process (not of the helper that joined it in). */
  #pid = 0;
  #exitCode: number | null = null;
  #stopping = false;

  private constructor(
    readonly spec: ServiceSpec,
    private readonly sandbox: Sandbox,
    private readonly process: ResultPromise,
  ) {
    this.logFile = `${SERVICE_LOG_DIR}/${spec.name}.log`;
    void process.then((result) => {
      this.#exitCode = result.exitCode ?? 128;
    });
  }

  /**
   * Starts `spec` in `sandbox` and resolves once its probe says it is ready.
   * Rejects with one line plus the log tail if it exits first or times out.
   */
  static async start(sandbox: Sandbox, spec: ServiceSpec): Promise<Service> {
    // The name becomes a file name in a shell command line: keep it plain.
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(spec.name))
      throw new SandboxError('BAD_OPTIONS', `service name '${spec.name}': use up to 64 letters, digits, _ . -`);
    if (spec.command.length === 0) throw new SandboxError('BAD_OPTIONS', `service ${spec.name}: empty command`);
    const log = `${SERVICE_LOG_DIR}/${spec.name}.log`;
    // The shell only sets up the log file, then becomes the service (exec),
    // so signals reach the service itself.
    const process = sandbox.spawn('/bin/sh', ['-c', `mkdir -p ${SERVICE_LOG_DIR} && exec "$@" >>${log} 2>&1`, spec.name, ...spec.command], {
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      ...(spec.root ? { root: spec.root } : {}),
      env: { ...spec.env },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      infoFd: INFO_FD,
      forceKillAfterDelay: false, // stop() gives the service its own grace period
    });
    const service = new Service(spec, sandbox, process);
    service.#pid = (await readHelperInfo(process.stdio[INFO_FD] as Readable))?.pid ?? 0;
    await service.#waitReady();
    return service;
  }

  /** True while the service runs. Asks the kernel, so a death is seen before the helper reports it. */
  get running(): boolean {
    if (this.#exitCode !== null) return false;
    if (!this.#pid) return true;
    try {
      return !exiting(readFileSync(`/proc/${this.#pid}/stat`, 'utf8'));
    } catch {
      return false; // reaped: gone
    }
  }

  /** The last lines of its output. */
  logTail(lines = 20): string {
    return tailOf(this.sandbox.pid, this.logFile, lines);
  }

  /** Its whole output so far ('' once the sandbox is gone): what a kept run and a failure save on the host. */
  log(): string {
    return readInside(this.sandbox.pid, this.logFile);
  }

  /** One line saying that it died, with the log tail; undefined while it runs or after an orderly stop. */
  failure(): string | undefined {
    if (this.running || this.#stopping) return undefined;
    const code = this.#exitCode === null ? '' : ` with code ${this.#exitCode}`;
    return `service ${this.spec.name} exited${code} while the sandbox was in use${this.#tailSuffix()}`;
  }

  /** Orderly stop: the stop signal, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.#stopping = true;
    await stopProcess(this.process, this.spec.stopGraceMs ?? 5000, this.spec.stopSignal ?? 'SIGTERM');
  }

  #tailSuffix(): string {
    const tail = this.logTail();
    return tail ? `; last lines of ${this.logFile}:\n${tail}` : '';
  }

  /** The whole log, read while the sandbox lives, for whoever reports the failure to put on the host. */
  #logDetails(): { log: { service: string; text: string } } {
    return { log: { service: this.spec.name, text: this.log() } };
  }

  async #isReady(): Promise<boolean> {
    const probe = this.spec.ready;
    if (!probe) return true;
    if ('tcp' in probe) return listensOn(this.sandbox.pid, probe.tcp);
    if ('socket' in probe) return socketExists(this.sandbox.pid, probe.socket);
    if ('log' in probe) return asRegExp(probe.log).test(readInside(this.sandbox.pid, this.logFile));
    const [file, ...args] = probe.command;
    return (await this.sandbox.exec(file!, args, { stdin: 'ignore', ...(this.spec.root ? { root: this.spec.root } : {}) })).exitCode === 0;
  }

  /** Ready, but perhaps not as asked: the log says so (see ServiceSpec.failOnLog). */
  #checkLog(): void {
    const pattern = this.spec.failOnLog;
    const line = pattern && readInside(this.sandbox.pid, this.logFile).match(asRegExp(pattern))?.[0];
    if (line) throw new SandboxError('SETUP_FAILED', `service ${this.spec.name} is not running as asked: ${line.trim()}`, this.#logDetails());
  }

  async #waitReady(): Promise<void> {
    const timeout = this.spec.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeout;
    for (;;) {
      if (!this.running) {
        await this.process; // its exit code, for the message
        throw new SandboxError(
          'SETUP_FAILED',
          `service ${this.spec.name} exited with code ${this.#exitCode} before it was ready${this.#tailSuffix()}`,
          this.#logDetails(),
        );
      }
      if (await this.#isReady()) return this.#checkLog();
      if (Date.now() > deadline) {
        throw new SandboxError('SETUP_FAILED', `service ${this.spec.name} was not ready after ${timeout} ms${this.#tailSuffix()}`, this.#logDetails());
      }
      await new Promise((resolve) => setTimeout(resolve, this.spec.ready && 'command' in this.spec.ready ? COMMAND_POLL_MS : POLL_MS));
    }
  }
}

/**
 * Orderly stop of a sandbox's services, newest first (an app before the
 * database it uses), so each shuts down cleanly: PostgreSQL writes its last
 * commits (it runs with synchronous_commit off). Failures are ignored: what
 * could not stop dies with the sandbox.
 */
export async function stopServices(services: readonly Service[]): Promise<void> {
  for (const service of [...services].reverse()) await service.stop().catch(() => undefined);
}
