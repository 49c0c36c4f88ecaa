import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * A kept sandbox is a directory: its writable layers (layers/N/upper), its
 * services' logs (logs/NAME.log), copies of its per-sandbox host dirs
 * (scratch/N) and kept.json, this manifest, which says how to start a
 * sandbox on exactly that state again (`sandbox-run open`).
 */

export const MANIFEST = 'kept.json';

/** One writable layer: mounted at `target` over `lowers` (top first); `upper` relative to the kept dir, or absolute when it was the caller's own. */
export interface KeptLayer {
  target: string;
  lowers: string[];
  upper: string;
  /** The working directory's layer (mounted copy-on-write at the sandbox's cwd). */
  workdir?: boolean;
}

/** A service as it was started, in JSON (a log probe's RegExp as its source). */
export interface KeptService {
  name: string;
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  ready?: { tcp: number } | { socket: string } | { command: string[] } | { log: string };
  failOnLog?: string;
  startTimeoutMs?: number;
  stopSignal?: string;
  stopGraceMs?: number;
  exports?: Record<string, string>;
}

/**
 * A host directory that belonged to the sandbox alone (a PostgreSQL socket
 * directory): opening makes a fresh one of the same kind, with the files
 * kept in `copy`, and every mention of `path` in the manifest points at it.
 */
export interface KeptScratch {
  path: string;
  kind: string;
  copy: string;
}

export interface KeptManifest {
  version: 2;
  label: string;
  keptAt: string;
  status?: string;
  exitCode?: number | null;
  /** The command the test ran. */
  command: string[];
  cwd: string;
  /** The rest of the sandbox's view, as SandboxOptions. */
  sandbox: {
    workdir: 'cow' | 'ro' | 'rw' | 'none';
    network?: 'none' | 'host';
    hostname?: string;
    uid?: number;
    gid?: number;
    tmpfs?: string[];
    binds?: { source: string; target: string; readonly: boolean }[];
    mask?: string[];
    passEnv?: string[];
    inheritEnv?: boolean;
  };
  layers: KeptLayer[];
  scratch: KeptScratch[];
  services: KeptService[];
  /** What the test was given explicitly (config env, -e, the runner's SANDBOX_SHARD...), secret-looking names left out. */
  env: Record<string, string>;
  /** Variables the test had removed (--unset-env, `env: { NAME: undefined }`). */
  unsetEnv: string[];
  /** What the services exported (DATABASE_URL...): the sandbox's own, needed to reach its services. */
  exports: Record<string, string>;
  /** Names left out of `env` because they look like credentials: give them again with -e. */
  droppedEnv: string[];
  /** Service logs, relative to the kept dir. */
  logs: { service: string; file: string }[];
  /** Version 1 (a runner's kept working directory): what `diff` compares with. */
  lower?: string[];
  target?: string;
}

function bad(dir: string, why: string): never {
  throw new Error(`${dir}: not a kept run (${why}); list kept runs with: ls $SANDBOX_RUN_HOME/runs/*`);
}

/** Reads kept.json; a version-1 file (a kept working directory only) is read as version 2. */
export function readManifest(dir: string): KeptManifest {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Record<string, unknown>;
  } catch (error) {
    bad(dir, (error as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${MANIFEST}` : `${MANIFEST}: ${(error as Error).message}`);
  }
  if (raw.version === 2) return raw as unknown as KeptManifest;
  if (!Array.isArray(raw.lower) || typeof raw.target !== 'string') bad(dir, `${MANIFEST} has neither layers nor lower/target`);
  const target = raw.target;
  return {
    version: 2,
    label: String(raw.label ?? ''),
    keptAt: '',
    command: Array.isArray(raw.command) ? raw.command.map(String) : [],
    cwd: target,
    sandbox: { workdir: 'cow' },
    layers: [{ target, lowers: raw.lower.map(String), upper: 'upper', workdir: true }],
    scratch: [],
    services: [],
    env: {},
    unsetEnv: [],
    exports: {},
    droppedEnv: [],
    logs: [],
  };
}

/** Writes kept.json, readable by its owner only (it holds the services' connection settings). */
export function writeManifest(dir: string, manifest: KeptManifest): void {
  const file = join(dir, MANIFEST);
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}
