import { mkdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { ResultPromise } from 'execa';
import { resolveLayers } from '../pool/layers.js';
import { removeTree, sweepDeadOwners } from '../process/sweep.js';
import { createSandbox } from '../sandbox/create.js';
import { workdirMountPoint } from '../sandbox/mounts.js';
import type { OverlayMount } from '../sandbox/options.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { diskUpperBase, upperPlacement } from '../sandbox/upper-placement.js';
import type { SandboxPoolOptions, WorkerSandboxOptions } from './options.js';
import { writeBack } from './write-back.js';

/** How to start a Vitest worker process: the same for every worker of a project. */
export interface WorkerSpec {
  file: string;
  args: readonly string[];
  cwd: string;
  /** What Vitest gives its workers: inherited, filtered like any sandbox's environment. */
  env: Readonly<Record<string, string | undefined>>;
  /** The pool's own `env` option: set as given. */
  extraEnv?: Readonly<Record<string, string>>;
}

const specKey = (spec: WorkerSpec) => JSON.stringify([spec.file, spec.args, spec.cwd, spec.env, spec.extraEnv]);
let workerCount = 0;

/** Starts a worker in `sandbox` with Vitest's IPC channel (fd 3, advanced serialization) passed through. */
function spawnWorker(sandbox: Sandbox, spec: WorkerSpec, env: Readonly<Record<string, string>>): ResultPromise {
  return sandbox.spawn(spec.file, spec.args, {
    cwd: spec.cwd,
    // Vitest hands its whole environment on: it is what the worker inherits,
    // filtered as every sandbox's inherited environment is; what services
    // export (DATABASE_URL) comes on top, and the user's `env` on top of that.
    inheritFrom: spec.env,
    env: { ...spec.extraEnv, ...env, SANDBOX_RUN_WORKER: String(++workerCount) },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    ipc: true,
    serialization: 'advanced',
    forceKillAfterDelay: false,
  });
}

const LAYER_PREFIX = 'sandbox-run-vitest-';

/**
 * Where the workers' writable layers go by default: the temporary directory,
 * unless overlayfs cannot keep its marks on tmpfs here (Linux < 6.6) and
 * sandboxes write to disk: then the same disk directory.
 */
function defaultUpperRoot(): string {
  if (upperPlacement().mode !== 'disk') return tmpdir();
  const base = diskUpperBase();
  mkdirSync(base, { recursive: true });
  return base;
}

/** Where the workers' writable layers go when failed sandboxes are kept: beside the kept runs. */
function keptUpperRoot(): string {
  const base = diskUpperBase();
  mkdirSync(base, { recursive: true });
  return base;
}

/** Removes the writable layers of runs that were killed before they could (named by their pid). */
function sweepDeadLayers(dir: string): void {
  sweepDeadOwners(
    dir,
    (name) => Number(/^sandbox-run-vitest-(\d+)-/.exec(name)?.[1]),
    (layer) => {
      try {
        removeTree(layer);
      } catch {
        // another user's: theirs to sweep
      }
    },
  );
}

/** A sandbox lent to one Vitest worker. */
export interface Lease {
  readonly sandbox: Sandbox;
  /** Whether keep() can keep this sandbox (the pool's `keepFailed`). */
  readonly keepable: boolean;
  /** The worker process: the one started ahead if `spec` is still what it was, else a new one. */
  worker(spec: WorkerSpec): ResultPromise;
  /** Ends the sandbox, copies the wanted writes back to the host and removes its layer. */
  release(): Promise<string[]>;
  /**
   * Ends the sandbox but keeps it whole for `sandbox-run open` (needs
   * `keepFailed`), then copies the wanted writes back as release() does.
   */
  keep(info: { label: string; command: readonly string[]; status: string }): Promise<{ dir: string; written: string[]; note?: string }>;
}

export interface SandboxSourceOptions {
  /** The project root: copy-on-write inside, at the same path. */
  root: string;
  sandbox: WorkerSandboxOptions;
  wanted: (relative: string) => boolean;
  /** How many sandboxes to keep ready ahead of demand. */
  warm: number;
  /** Create every sandbox keepable, so a failed file's can be kept (Lease.keep). */
  keepFailed?: boolean;
  upperRoot?: string;
  prepare?: SandboxPoolOptions['prepare'];
  presets?: SandboxPoolOptions['presets'];
  services?: SandboxPoolOptions['services'];
  layers?: SandboxPoolOptions['layers'];
  store?: SandboxPoolOptions['store'];
  /** Start the worker process ahead too, so that node and Vitest's runtime load while nobody waits. */
  worker?: WorkerSpec;
}

/**
 * Creates the sandboxes of one project's workers and keeps `warm` of them
 * ready (services prepared, worker process loaded), so that starting a
 * worker costs almost nothing. Each sandbox is used once.
 */
export class SandboxSource {
  readonly #options: SandboxSourceOptions;
  readonly #ready: Promise<Lease>[] = [];
  /** The store's layers, looked up and leased once for all sandboxes. */
  #layers: Promise<{ overlays: OverlayMount[]; release: () => void }> | undefined;
  #closed = false;

  readonly #upperRoot: string;

  constructor(options: SandboxSourceOptions) {
    this.#options = options;
    // A kept sandbox takes its working-directory layer along by a rename:
    // it must be on the kept runs' filesystem, in $SANDBOX_RUN_HOME.
    this.#upperRoot = options.upperRoot ?? (options.keepFailed ? keptUpperRoot() : defaultUpperRoot());
    sweepDeadLayers(this.#upperRoot);
  }

  /** A pristine sandbox; rejects with the reason (helper or `prepare`) when it cannot start. */
  acquire(): Promise<Lease> {
    if (this.#closed) return Promise.reject(new Error('sandbox-run: the Vitest sandbox pool is closed'));
    const lease = this.#ready.shift() ?? this.#create();
    while (this.#ready.length < this.#options.warm) {
      const next = this.#create();
      next.catch(() => {}); // surfaced by acquire() to the worker that takes it
      this.#ready.push(next);
    }
    return lease;
  }

  /** Ends the sandboxes still waiting; leases already given out stay with their workers. */
  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready.splice(0);
    await Promise.allSettled(ready.map(async (lease) => (await lease).release()));
    (await this.#layers?.catch(() => undefined))?.release();
  }

  async #create(): Promise<Lease> {
    const { root, sandbox, wanted, prepare, worker, presets = [], services = [], layers = [], store, keepFailed = false } = this.#options;
    // Under /tmp the sandbox's own /tmp would hide the root's parents (and
    // node_modules): overlay the top-level directory below /tmp instead.
    const mount = workdirMountPoint(root);
    const prefix = relative(mount, root);
    const inRoot = (rel: string) => (prefix === '' ? wanted(rel) : rel.startsWith(`${prefix}/`) && wanted(rel.slice(prefix.length + 1)));
    const dir = await mkdtemp(join(this.#upperRoot, `${LAYER_PREFIX}${process.pid}-`));
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    let sb: Sandbox | undefined;
    const release = async (): Promise<string[]> => {
      try {
        await sb?.dispose();
        return sb ? await writeBack(upper, mount, inRoot) : [];
      } finally {
        removeTree(dir);
      }
    };
    const keep: Lease['keep'] = async ({ label, command, status }) => {
      try {
        const kept = await sb!.keep({ label, command, status, adoptWorkdirLayer: true });
        const layer = kept.manifest.layers.find((l) => l.workdir);
        const written = layer ? await writeBack(join(kept.dir, layer.upper), mount, inRoot) : [];
        const note = kept.evicted.length ? `removed ${kept.evicted.length} older kept run(s) beyond the cap (SANDBOX_RUN_KEEP_MAX)` : undefined;
        return { dir: kept.dir, written, ...(note ? { note } : {}) };
      } finally {
        removeTree(dir);
      }
    };
    try {
      this.#layers ??= resolveLayers(layers, store);
      const { overlays: layerOverlays } = await this.#layers;
      await Promise.all([mkdir(upper), mkdir(work)]);
      // The overlay root takes its mode from the upper dir: keep the root's.
      await chmod(upper, (await stat(mount)).mode & 0o7777);
      // Presets and services come up here, ready before any worker sees the sandbox.
      sb = await createSandbox({
        ...sandbox,
        presets,
        services,
        keepable: keepFailed,
        cwd: root,
        // The root's writable layer on the host, where write-back can read it.
        workdirLayer: { upper, work },
        overlays: [...(sandbox.overlays ?? []), ...layerOverlays],
      });
      const env = (await prepare?.(sb)) ?? {};
      const ready = sb;
      let early = worker ? spawnWorker(ready, worker, env) : undefined;
      let released: Promise<string[]> | undefined;
      return {
        sandbox: ready,
        keepable: keepFailed,
        worker(spec) {
          const usable = early && early.exitCode === null && early.signalCode === null && specKey(spec) === specKey(worker!);
          const child = usable ? early! : spawnWorker(ready, spec, env);
          if (!usable) early?.kill('SIGKILL');
          early = undefined;
          return child;
        },
        release: () => (released ??= release()),
        keep: (info) => {
          if (released) throw new Error('sandbox-run: keep() after release()');
          const kept = keep(info);
          released = kept.then((k) => k.written);
          return kept;
        },
      };
    } catch (error) {
      await release();
      throw error;
    }
  }
}
