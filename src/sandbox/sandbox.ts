import type { Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import { SandboxError, setupError } from '../errors.js';
import { helperPath } from '../helper/locate.js';
import { INFO_FD, readHelperInfo } from '../process/info-fd.js';
import { stopProcess } from '../process/stop.js';
import type { Service } from '../services/service.js';
import type { SandboxCgroup } from './cgroup.js';
import { sandboxEnv } from './env.js';
import { joinArgs } from './helper-argv.js';
import { imageMountAt } from './image-root.js';
import type { KeepOptions, KeptSandbox } from './keep.js';
import { launchSandbox } from './launch.js';
import { startDirectory } from './mounts.js';
import type { NormalizedOptions, SandboxOptions } from './options.js';
import { type ProcessOptions, type SandboxResult, startHelper, toSandboxResult } from './process.js';

/** How long dispose() waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000;

/** When a sandbox ended, and how to end it. */
export interface SandboxLifetime {
  ended: Promise<unknown>;
  stop(): Promise<void>;
}

export interface ExecOptions extends ProcessOptions {
  /** The environment to inherit instead of this process's (filtered the same way), e.g. the one Vitest gives its workers. */
  inheritFrom?: Readonly<Record<string, string | undefined>>;
  /** Working directory inside the sandbox (inside `root`, with one). Default: the sandbox's; with `root`, the image's WorkingDir. */
  cwd?: string;
  /**
   * Run on an image mounted in this sandbox (`images: [{ ref, at }]`): the
   * process chroots into `at`, gets the image's Env and passwd entry, and
   * shares the sandbox's network, /tmp, /dev and /proc.
   */
  root?: string;
  /** An fd (a pipe in `stdio`) on which the helper reports the process's host pid as `{"pid":N}`. */
  infoFd?: number;
}

/**
 * A sandbox that stays alive while processes are started in it: services
 * first, then commands. Every process shares its namespaces and its
 * copy-on-write filesystem; `dispose()` ends them all and the kernel drops
 * the writable layers.
 *
 * ```ts
 * await using sb = await Sandbox.create({ overlays: [{ lower: layerDir, target: '/data' }] });
 * const { stdout } = await sb.exec('ls', ['/data']);
 * ```
 */
export class Sandbox implements AsyncDisposable {
  /** Host pid of the sandbox's init (pid 1 inside). */
  readonly pid: number;
  readonly options: NormalizedOptions;
  /** Variables every process in the sandbox gets, e.g. what its services export (DATABASE_URL). */
  readonly env: Record<string, string> = {};
  readonly #services: Service[] = [];
  readonly #cleanups: (() => void)[] = [];
  readonly #lifetime: SandboxLifetime;
  readonly #processes = new Set<ResultPromise>();
  readonly #cgroup: SandboxCgroup | undefined;
  #disposed: Promise<void> | undefined;
  #keeper: ((options: KeepOptions) => Promise<KeptSandbox>) | undefined;
  #kept: Promise<KeptSandbox> | undefined;
  #exited = false;
  #oomKills = 0;

  private constructor(pid: number, options: NormalizedOptions, lifetime: SandboxLifetime, cgroup?: SandboxCgroup) {
    this.pid = pid;
    this.options = options;
    this.#lifetime = lifetime;
    this.#cgroup = cgroup;
    void lifetime.ended.finally(() => {
      this.#exited = true;
    });
  }

  /** Creates a sandbox and resolves once its mounts and namespaces are ready. */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const {
      subprocess: supervisor,
      options: normalized,
      cgroup,
    } = launchSandbox(options, null, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], forceKillAfterDelay: false }, { infoFd: INFO_FD });
    const info = await readHelperInfo(supervisor.stdio[INFO_FD] as Readable).catch(() => undefined);
    if (!info) {
      const result = await supervisor;
      await cgroup?.release();
      throw setupError(String(result.stderr ?? ''));
    }
    return new Sandbox(
      info.pid,
      normalized,
      {
        ended: supervisor,
        stop: () => stopProcess(supervisor, STOP_GRACE_MS),
      },
      cgroup,
    );
  }

  /** Processes the OOM killer ended because of the sandbox's memory limit (known once disposed). */
  get oomKills(): number {
    return this.#oomKills;
  }

  /** True until the sandbox has ended (disposed, or its init died). */
  get alive(): boolean {
    return !this.#exited && !this.#disposed;
  }

  /**
   * Starts a process in the sandbox and returns execa's subprocess: stream
   * its output, await it for the result, kill it. Rejects never; see exec().
   */
  spawn(file: string, args: readonly string[] = [], options: ExecOptions = {}): ResultPromise {
    if (!this.alive) throw new SandboxError('SANDBOX_EXITED', `sandbox ${this.pid} has ended; create a new one`);
    const { cwd, infoFd, inheritFrom, root, ...processOptions } = options;
    const image = root === undefined ? undefined : imageMountAt(this.options, root);
    const start = cwd ?? (image ? image.view.workingDir : startDirectory(this.options));
    const join = joinArgs(this.pid, { cwd: start, rlimits: this.options.rlimits, ...(image ? { chroot: image.at } : {}) }, [file, ...args], {
      ...(infoFd !== undefined ? { infoFd } : {}),
      ...(this.#cgroup ? { cgroup: this.#cgroup.leaf } : {}),
    });
    const envOptions = image ? { ...this.options, imageRoot: image.view } : this.options;
    const subprocess = startHelper(helperPath(), join, sandboxEnv(envOptions, options.env, this.env, inheritFrom), processOptions);
    this.#processes.add(subprocess);
    void subprocess.finally(() => this.#processes.delete(subprocess));
    return subprocess;
  }

  /**
   * Runs a command in the sandbox to completion. Rejects with
   * SERVICE_FAILED if one of the sandbox's services died meanwhile.
   */
  async exec(file: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<SandboxResult> {
    const result = toSandboxResult([file, ...args], await this.spawn(file, args, options));
    const failure = this.#services.map((service) => service.failure()).find(Boolean);
    // (failure() looks at the service's process itself, so a death during the command is seen at once.)
    if (failure) throw new SandboxError('SERVICE_FAILED', failure, { command: [file, ...args], stderr: result.stderr, exitCode: result.exitCode });
    return result;
  }

  /** The services running in this sandbox, in start order. */
  get services(): readonly Service[] {
    return this.#services;
  }

  /** Records a started service and offers its exports to every later process. */
  addService(service: Service): void {
    this.#services.push(service);
    Object.assign(this.env, service.spec.exports);
  }

  /** Runs `cleanup` once the sandbox is gone (host-side resources such as socket directories). */
  onDispose(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  /** Set by createSandbox for a `keepable` sandbox. */
  setKeeper(keeper: (options: KeepOptions) => Promise<KeptSandbox>): void {
    this.#keeper = keeper;
  }

  /**
   * Ends the sandbox but keeps its state on disk under
   * $SANDBOX_RUN_HOME/runs/: every writable layer (a preset's database
   * too), its services' logs and a manifest, so that `sandbox-run open DIR`
   * starts a sandbox on exactly that state. Needs `keepable: true`.
   */
  keep(options: KeepOptions = {}): Promise<KeptSandbox> {
    if (!this.#keeper)
      return Promise.reject(
        new SandboxError('BAD_OPTIONS', 'keep(): this sandbox was created without keepable: true; pass { keepable: true } to createSandbox or createPool'),
      );
    if (this.#disposed && !this.#kept)
      return Promise.reject(new SandboxError('SANDBOX_EXITED', 'keep(): the sandbox was already disposed; call keep() instead of dispose()'));
    this.#kept ??= this.#keeper(options);
    return this.#kept;
  }

  /** Stops every process in the sandbox and waits until it is gone. Idempotent. */
  dispose(): Promise<void> {
    this.#disposed ??= this.#stop();
    return this.#disposed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #stop(): Promise<void> {
    if (!this.#exited) await this.#lifetime.stop();
    // Joined processes die with the sandbox's pid namespace; wait for their
    // supervisors to notice so nothing outlives dispose().
    await Promise.allSettled([...this.#processes]);
    if (this.#cgroup) this.#oomKills = (await this.#cgroup.release()).oomKills;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
  }
}
