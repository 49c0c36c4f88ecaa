import type { z } from 'zod';
import type { ResourceLimits } from './cgroup.js';
import { normalizeEnv } from './env.js';
import { normalizeIdentity } from './identity.js';
import { type ImageMount, type ImageView, normalizeImages } from './image-root.js';
import { normalizeLimits } from './limits.js';
import { normalizeMounts, sandboxPath } from './mounts.js';
import type { bindSchema, imageMountSchema, overlaySchema, RLIMIT_NAMES, SANDBOX_OPTIONS } from './option-table.js';
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
/** An image mounted at a path of the sandbox, for processes started with `root` (image-root.ts). */
export type ImageMountOption = z.input<typeof imageMountSchema>;
export type RlimitName = (typeof RLIMIT_NAMES)[number];
export type RlimitValue = NonNullable<NonNullable<SandboxOptions['rlimits']>[RlimitName]>;

/** Options after validation: absolute paths, parsed sizes, defaults filled. */
export interface NormalizedOptions {
  cwd: string;
  workdir: WorkdirMode;
  /** The copy-on-write working directory's writable layer on the host (else a private tmpfs). */
  workdirLayer?: { upper: string; work: string };
  /** `upperOnDisk`: without an `upper`, a private one on disk under $SANDBOX_RUN_HOME/uppers (launch.ts plans it). */
  overlays: { lowers: string[]; target: string; upper?: { upper: string; work: string }; upperOnDisk?: true }[];
  binds: { source: string; target: string; readonly: boolean }[];
  tmpfs: string[];
  /** `image`: the sandbox's root is this image, not the host's (image-root.ts). */
  imageRoot?: ImageView;
  /** `images`: each is also in `overlays` (at its `at`), with the sandbox's /dev, /proc, /tmp in `insideBinds`. */
  imageMounts: ImageMount[];
  /** Paths of the sandbox's own view bound onto others once /proc exists (the helper's --bind-inside). */
  insideBinds: { source: string; target: string }[];
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
  const mounts = normalizeMounts(options, identity.network);
  const { overlays, binds, ...images } = normalizeImages(options, identity, sandboxPath);
  return {
    ...mounts,
    overlays: [...mounts.overlays, ...overlays],
    binds: [...mounts.binds, ...binds],
    ...images,
    ...identity,
    ...normalizeEnv(options),
    ...normalizeLimits(options),
  };
}
