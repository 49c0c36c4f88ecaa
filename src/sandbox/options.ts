import type { z } from 'zod';
import type { ResourceLimits } from './cgroup.js';
import { normalizeEnv } from './env.js';
import { normalizeIdentity } from './identity.js';
import { normalizeLimits } from './limits.js';
import { normalizeMounts } from './mounts.js';
import type { bindSchema, overlaySchema, RLIMIT_NAMES, SANDBOX_OPTIONS } from './option-table.js';
import type { DefaultSizes } from './size-budget.js';

export { DEFAULT_PIDS_LIMIT } from './limits.js';
export { parseSize } from './size.js';

type Table = typeof SANDBOX_OPTIONS;

/** Everything a sandbox can be told; all fields are optional. Derived from the option table (option-table.ts), where each is documented. */
export type SandboxOptions = { -readonly [K in keyof Table]?: z.input<Table[K]['schema']> };

/** The options a config file's `sandbox` section may set: all but those the table marks `notInConfig`. */
export type ConfigSandboxOptions = Omit<SandboxOptions, { [K in keyof Table]: Table[K] extends { notInConfig: string } ? K : never }[keyof Table]>;

/** How the working directory appears inside the sandbox. */
export type WorkdirMode = NonNullable<SandboxOptions['workdir']>;
/** A copy-on-write overlay of one or more host directories. */
export type OverlayMount = z.input<typeof overlaySchema>;
export type BindMount = z.input<typeof bindSchema>;
export type RlimitName = (typeof RLIMIT_NAMES)[number];
export type RlimitValue = NonNullable<NonNullable<SandboxOptions['rlimits']>[RlimitName]>;

/** Options after validation: absolute paths, parsed sizes, defaults filled. */
export interface NormalizedOptions {
  cwd: string;
  workdir: WorkdirMode;
  /** The copy-on-write working directory's writable layer on the host (else a private tmpfs). */
  workdirLayer?: { upper: string; work: string };
  overlays: { lowers: string[]; target: string; upper?: { upper: string; work: string } }[];
  binds: { source: string; target: string; readonly: boolean }[];
  tmpfs: string[];
  /**
   * Host directories hidden behind an empty tmpfs before any other mount
   * but the working directory: sandbox-run's own home (the store, other
   * sandboxes' sockets, kept runs) and a runtime dir outside /run.
   */
  hiddenDirs: string[];
  network: 'none' | 'host';
  env: Record<string, string | undefined>;
  inheritEnv: boolean;
  hostname: string;
  uid?: number;
  gid?: number;
  /** Sizes the caller set; where unset, `defaultSizes` apply. */
  tmpfsSize?: number;
  upperSize?: number;
  defaultSizes: DefaultSizes;
  rlimits: [RlimitName, string, string][];
  keepFds: number[];
  masks: string[];
  passEnv: string[];
  /** Limits enforced through a per-sandbox cgroup under `cgroupParent`. */
  limits: ResourceLimits;
  cgroupParent?: string;
}

/**
 * Validates and completes options. It only orchestrates: each feature
 * validates its own options and fills its own defaults (the option table
 * says which, for --help and the README).
 */
export function normalizeOptions(options: SandboxOptions = {}): NormalizedOptions {
  const identity = normalizeIdentity(options);
  return {
    ...normalizeMounts(options, identity.network),
    ...identity,
    ...normalizeEnv(options),
    ...normalizeLimits(options),
  };
}
