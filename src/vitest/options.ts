import type { LayerMount, LayerSource } from '../pool/layers.js';
import type { Preset } from '../presets/types.js';
import type { SandboxOptions } from '../sandbox/options.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ServiceSpec } from '../services/types.js';

/** Sandbox settings a worker may choose; the pool owns cwd, workdir and env. */
export type WorkerSandboxOptions = Omit<SandboxOptions, 'cwd' | 'workdir' | 'inheritEnv' | 'env'>;

/** Options of {@link sandboxPool}. All are optional. */
export interface SandboxPoolOptions {
  /** Overlays (layers), binds, tmpfs, network, limits for every worker's sandbox. */
  sandbox?: WorkerSandboxOptions;
  /** Layers from the layer store, each mounted copy-on-write at its target in every sandbox. */
  layers?: readonly LayerMount[];
  /** Where `layers` are looked up (default: the layer store in $SANDBOX_RUN_HOME). */
  store?: LayerSource;
  /**
   * Presets such as `postgres({ seed })`: prepared once (the seeded cluster is
   * built or found in the cache), then each sandbox gets its data and service.
   */
  presets?: readonly Preset[];
  /**
   * Services started in every sandbox, in order, each ready (its probe) before
   * the next and all before the worker; their exports (DATABASE_URL ...) are
   * in the worker's `process.env`. One that fails fails the worker's file(s)
   * with its log tail.
   */
  services?: readonly ServiceSpec[];
  /**
   * Runs in every fresh sandbox after its services and before its worker
   * starts (with a warm pool, ahead of demand), e.g. to load fixtures. Returns variables for the worker, e.g. `DATABASE_URL`.
   * A rejection fails the file(s) of that worker with its message, so include
   * the service's log tail in it.
   */
  prepare?: (sandbox: Sandbox) => Promise<Readonly<Record<string, string>> | void>;
  /** Extra variables for the test workers (on top of Vitest's own environment). */
  env?: Readonly<Record<string, string>>;
  /**
   * Paths under the project root whose writes inside a sandbox are copied back
   * to the host when the worker ends. `name/` or `dir/file` are relative to the
   * root; `**\/name` matches a directory of that name anywhere.
   * Default: `['**\/__snapshots__', '.vitest-attachments']`. Reports and coverage
   * are written by Vitest's main process and need no entry.
   */
  writeBack?: readonly string[];
  /**
   * Sandboxes kept created ahead of demand, per project. Default: Vitest's
   * `maxWorkers`. `0` creates each sandbox when its worker starts.
   */
  warm?: number;
  /**
   * Start each warm sandbox's worker process ahead too (default true), so that
   * Node and Vitest's runtime load while no file waits. Turn off if tests
   * depend on when their worker process started.
   */
  startEarly?: boolean;
  /**
   * Keep the sandbox of a worker whose test file failed, services and all
   * (every writable layer, a preset's database too, service logs), under
   * $SANDBOX_RUN_HOME/runs/, for `sandbox-run open DIR` (e.g. `-- psql`)
   * and `sandbox-run diff DIR`. Costs disk writes instead of tmpfs for every
   * sandbox. Default: on when SANDBOX_RUN_KEEP_FAILED=1.
   */
  keepFailed?: boolean;
  /**
   * Host directory for the sandboxes' writable layers. Default: `os.tmpdir()`,
   * or `$SANDBOX_RUN_HOME/uppers` where writable layers go to disk (Linux < 6.6).
   */
  upperRoot?: string;
}

export const DEFAULT_WRITE_BACK: readonly string[] = ['**/__snapshots__', '.vitest-attachments'];

/** A compiled write-back rule list: is this path (relative to the root) one to copy back? */
export function writeBackMatcher(rules: readonly string[]): (relative: string) => boolean {
  const anywhere = new Set<string>();
  const prefixes: string[] = [];
  for (const rule of rules) {
    const clean = rule.replace(/^\.\//, '').replace(/\/+$/, '');
    if (clean.startsWith('**/') && !clean.slice(3).includes('/')) anywhere.add(clean.slice(3));
    else prefixes.push(clean);
  }
  return (relative) => {
    const parts = relative.split('/');
    // The last part is the file itself: a file named like a rule is not inside one.
    if (parts.slice(0, -1).some((part) => anywhere.has(part))) return true;
    return prefixes.some((prefix) => relative === prefix || relative.startsWith(`${prefix}/`));
  };
}
