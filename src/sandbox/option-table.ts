import { z } from 'zod';
import { parseBind, parseCpus, parseEnvPair, parseOverlay, parsePids, parseRlimit } from './option-parsers.js';
import { SIZE_PATTERN } from './size.js';

/*
 * Every sandbox option, declared once. From this table come the
 * `SandboxOptions` type (options.ts), the `sandbox` section of config files
 * (config/schema.ts), the CLI flags (cli/sandbox-flags.ts) and, in the order
 * of HELPER_PHASES, the helper's argument list (helper-argv.ts). Validation
 * and defaults live in normalizeOptions (options.ts), which calls each
 * feature's own normaliser (mounts.ts, limits.ts, identity.ts, env.ts).
 *
 * Adding an option: one entry here, its normalisation in its feature module,
 * its helper code (if it reaches the helper), and an example in
 * test/unit/option-table.test.ts, which checks that it reaches all of them.
 */

const absolute = z.string().startsWith('/', 'must be an absolute path inside the sandbox');
const size = z.union([z.number().int().positive(), z.string().regex(SIZE_PATTERN, 'expected a size such as 512m')]);
const rlimitValue = z.union([z.number().int().nonnegative(), z.literal('unlimited')]);
export const RLIMIT_NAMES = ['nofile', 'fsize', 'cpu', 'core', 'nproc', 'as', 'data', 'stack'] as const;

export const overlaySchema = z.strictObject({
  /** Host directories, top first; a layer stack is `[child, parent, ...]`. */
  lower: z.union([z.string(), z.array(z.string()).min(1).readonly()]),
  /** Absolute path inside the sandbox. */
  target: absolute,
  /**
   * Keep the writable layer on the host (e.g. to commit it as a layer or to
   * keep a failed run): both directories must exist on one filesystem.
   * Default: a private tmpfs that vanishes with the sandbox.
   */
  upper: z.strictObject({ upper: z.string(), work: z.string() }).optional(),
  /**
   * Put this overlay's private writable layer on disk under
   * $SANDBOX_RUN_HOME/uppers, even where the others are on tmpfs: on a
   * reflink filesystem (XFS, btrfs) shared with the layer store, copy-up
   * then clones extents (src/layers/reflink.ts). Removed with the sandbox.
   */
  upperOnDisk: z.boolean().optional(),
});
export const bindSchema = z.strictObject({
  source: z.string(),
  /** Default: the same path as the source. */
  target: z.string().optional(),
  readonly: z.boolean().optional(),
});
const hostLayer = z.strictObject({ upper: z.string(), work: z.string() });
export const imageMountSchema = z.strictObject({
  /** An image in the layer store (`sandbox-run pull` / `import`): a tag such as redis:7, or a digest. */
  ref: z.string().min(1),
  /** Where it appears, e.g. /run/images/redis (under /run or another fresh tmpfs: the host root is read-only). */
  at: absolute,
});

/** Where an option's flags appear in `--help`. */
export type FlagGroup = 'Filesystem:' | 'Limits:' | 'Process:' | 'Secrets:';

/** One CLI flag: what yargs needs to parse it. Values are folded into the option by `fromFlags`. */
export interface FlagSpec {
  /** kebab-case; yargs also accepts the camelCase form. */
  name: string;
  alias?: string;
  type: 'string' | 'number' | 'boolean';
  /** Repeatable. */
  array?: boolean;
  choices?: readonly string[];
  describe: string;
}

/**
 * The helper's argument list is built phase by phase, in this order (each
 * phase in helper-argv.ts): ids and network, sizes, the root (an image's
 * or the host's), the working directory
 * (with the hidden host dirs around it, so that later mounts land on top of
 * both), the caller's overlays, binds and tmpfs mounts, the credential masks
 * last (so no mount uncovers them), then what the command's process gets.
 */
export const HELPER_PHASES = ['identity', 'sizes', 'root', 'workdir', 'overlays', 'binds', 'tmpfs', 'masks', 'process'] as const;
export type HelperPhase = (typeof HELPER_PHASES)[number];

/** Parsed flag values as yargs gives them (camelCase names). */
export type FlagValues = Readonly<Record<string, unknown>>;

export interface OptionSpec {
  /** The value's shape: the API type and the config file's validation. */
  schema: z.ZodType;
  /** The default, as `--help` and the README say it (normalizeOptions applies it). */
  default: string;
  /** Not in config files (e.g. the working directory: the config file's place decides it). Why, when set. */
  notInConfig?: string;
  group?: FlagGroup;
  /** The CLI flags that set the option; none: why. */
  flags: readonly FlagSpec[] | { none: string };
  /** The option from its flags' values; undefined when none was given. Default: the one flag's value. */
  fromFlags?: (flags: FlagValues) => unknown;
  /** The phase of the helper's argument list it shapes, or why it does not reach the helper. */
  helper: HelperPhase | { none: string };
}

const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);
const given = <T>(items: T[]): T[] | undefined => (items.length ? items : undefined);

/** `--help` text that needs a figure of the host is given by the CLI; this is the rest. */
export const SANDBOX_OPTIONS = {
  /** Host directory the command starts in (same path inside). Default: process.cwd(). */
  cwd: {
    schema: z.string(),
    default: 'the current directory',
    notInConfig: "a config file applies to the directory it is found from; set the command's with --cwd",
    group: 'Filesystem:',
    flags: [{ name: 'cwd', type: 'string', describe: 'Working directory (default: the current one)' }],
    helper: 'workdir',
  },
  /** How `cwd` is mounted: copy-on-write (default), read-only, read-write or not at all. */
  workdir: {
    schema: z.enum(['cow', 'ro', 'rw', 'none']),
    default: 'cow',
    group: 'Filesystem:',
    flags: [{ name: 'workdir', type: 'string', choices: ['cow', 'ro', 'rw', 'none'], describe: 'How the working directory appears (default: cow)' }],
    helper: 'workdir',
  },
  /**
   * With `workdir: 'cow'`: keep the working directory's writable layer on the
   * host, in these two directories of one filesystem, to read it afterwards
   * (`--keep-failed`, the Vitest pool's write-back). Default: a private tmpfs.
   */
  workdirLayer: {
    schema: hostLayer,
    default: 'a private tmpfs',
    notInConfig: 'a layer kept on the host belongs to one sandbox, not to every sandbox of a project',
    flags: { none: 'the runner sets it for --keep-failed; the Vitest pool for write-back' },
    helper: 'workdir',
  },
  /**
   * Run on an image's filesystem as `/` (copy-on-write) instead of the
   * host's read-only root: an image in the layer store (`sandbox-run pull`
   * or `import`), e.g. 'postgres:16'. The working directory, binds and
   * overlays are mounted into it; Env, WorkingDir and a passwd entry come
   * from the image (image-root.ts).
   */
  image: {
    schema: z.string().min(1),
    default: "none: the host's root, read-only",
    group: 'Filesystem:',
    flags: [{ name: 'image', type: 'string', describe: 'Run on the filesystem of image REF (from sandbox-run pull/import) as /, copy-on-write' }],
    helper: 'root',
  },
  /**
   * Images mounted copy-on-write at paths of the sandbox, with its /dev,
   * /proc and /tmp bound into them, for processes started with `root: at`
   * (exec, spawn, services): a server from an image on the sandbox's own
   * localhost. Presets add them through `PresetParts.images`.
   */
  images: {
    schema: z.array(imageMountSchema).readonly(),
    default: 'none',
    flags: { none: 'only processes started with root: AT use them (API, presets)' },
    helper: 'overlays',
  },
  /** Copy-on-write overlays of host directories. */
  overlays: {
    schema: z.array(overlaySchema).readonly(),
    default: 'none',
    group: 'Filesystem:',
    flags: [{ name: 'overlay', type: 'string', array: true, describe: 'Copy-on-write view of host dir(s) SRC at DST (stack with child+parent:DST)' }],
    fromFlags: (flags) => list(flags.overlay).map(parseOverlay),
    helper: 'overlays',
  },
  binds: {
    schema: z.array(bindSchema).readonly(),
    default: 'none',
    group: 'Filesystem:',
    flags: [
      { name: 'bind', type: 'string', array: true, describe: 'Read-write bind SRC[:DST] (writes reach the host)' },
      { name: 'ro-bind', type: 'string', array: true, describe: 'Read-only bind SRC[:DST]' },
    ],
    fromFlags: (flags) => [...list(flags.bind).map((v) => parseBind(v, false)), ...list(flags.roBind).map((v) => parseBind(v, true))],
    helper: 'binds',
  },
  /** Extra fresh tmpfs mounts (absolute paths inside). /tmp, /dev/shm and /run always are. */
  tmpfs: {
    schema: z.array(z.string()).readonly(),
    default: 'none',
    group: 'Filesystem:',
    flags: [{ name: 'tmpfs', type: 'string', array: true, describe: 'Fresh tmpfs at DST (/tmp, /dev/shm and /run always are)' }],
    fromFlags: (flags) => list(flags.tmpfs),
    helper: 'tmpfs',
  },
  /** 'none' (default): loopback only. 'host': share the host's network. */
  network: {
    schema: z.enum(['none', 'host']),
    default: 'none',
    group: 'Process:',
    flags: [{ name: 'network', type: 'string', choices: ['none', 'host'], describe: 'none (default): private loopback only; host: share the host network' }],
    helper: 'identity',
  },
  /** Variables to set; `undefined` removes one, even one a preset or service exports. */
  env: {
    schema: z.record(z.string(), z.string().optional()).readonly(),
    default: 'none',
    group: 'Process:',
    flags: [
      { name: 'env', alias: 'e', type: 'string', array: true, describe: 'Set NAME=VALUE (beats what presets export)' },
      { name: 'unset-env', type: 'string', array: true, describe: 'Remove NAME from the environment, even one a preset exports' },
    ],
    fromFlags: (flags) => {
      const pairs: [string, string | undefined][] = [
        ...list(flags.env).map(parseEnvPair),
        ...list(flags.unsetEnv).map((name): [string, undefined] => [name, undefined]),
      ];
      return Object.fromEntries(pairs);
    },
    helper: { none: "the environment is the helper process's own (env.ts: sandboxEnv)" },
  },
  /** Start from the caller's environment (default true) or from an empty one. */
  inheritEnv: {
    schema: z.boolean(),
    default: 'true',
    group: 'Process:',
    flags: [{ name: 'clean-env', type: 'boolean', describe: 'Start from an empty environment' }],
    fromFlags: (flags) => (flags.cleanEnv ? false : undefined),
    helper: { none: "the environment is the helper process's own (env.ts: sandboxEnv)" },
  },
  hostname: {
    schema: z.string().min(1),
    default: 'sandbox',
    group: 'Process:',
    flags: [{ name: 'hostname', type: 'string', describe: 'Hostname inside (default: sandbox)' }],
    helper: 'identity',
  },
  /** Ids inside. Default: the caller's; for root, 65534 (PostgreSQL refuses uid 0). 0 holds no capability either. */
  uid: {
    schema: z.number().int().nonnegative(),
    default: "the caller's (65534 for root)",
    group: 'Process:',
    flags: [{ name: 'uid', type: 'number', describe: 'User id inside (default: yours; 65534 for root; 0 holds no capability)' }],
    helper: 'identity',
  },
  gid: {
    schema: z.number().int().nonnegative(),
    default: "the caller's (65534 for root)",
    group: 'Process:',
    flags: [{ name: 'gid', type: 'number', describe: 'Group id inside' }],
    helper: 'identity',
  },
  /**
   * Size of /tmp, /dev/shm, /run and extra tmpfs mounts: bytes or '512m', '2g'.
   * Default: a quarter of this sandbox's share of the memory budget (see `concurrency`).
   */
  tmpfsSize: {
    schema: size,
    default: "a quarter of the sandbox's share of half the RAM",
    group: 'Limits:',
    flags: [{ name: 'tmpfs-size', type: 'string', describe: 'Size of /tmp, /dev/shm, /run and --tmpfs mounts (e.g. 512m)' }],
    helper: 'sizes',
  },
  /** Size of the tmpfs holding the overlays' writable layers. Default: half of this sandbox's share of the memory budget. */
  upperSize: {
    schema: size,
    default: "half of the sandbox's share of half the RAM",
    group: 'Limits:',
    flags: [{ name: 'upper-size', type: 'string', describe: 'Size of the tmpfs holding copy-on-write writes (e.g. 2g)' }],
    helper: 'sizes',
  },
  /**
   * How many sandboxes run at once, for the default sizes: all of them
   * together get half of the host's memory for their tmpfs mounts. Default:
   * the number of cores; the runner, the warm pool and the Vitest pool set it.
   */
  concurrency: {
    schema: z.number().int().positive(),
    default: 'the number of cores',
    flags: { none: '--parallel sets it for the runner' },
    helper: 'sizes',
  },
  rlimits: {
    schema: z.partialRecord(z.enum(RLIMIT_NAMES), z.union([rlimitValue, z.tuple([rlimitValue, rlimitValue]).readonly()])),
    default: 'core 0 (no core dumps); nproc = pids where no cgroup holds them',
    group: 'Limits:',
    flags: [{ name: 'rlimit', type: 'string', array: true, describe: 'NAME=SOFT[:HARD]: nofile fsize cpu core nproc as data stack' }],
    fromFlags: (flags) => {
      return Object.fromEntries(list(flags.rlimit).map(parseRlimit));
    },
    helper: 'process',
  },
  /** File descriptors passed to the command besides stdio (Node's IPC fd always is). */
  keepFds: {
    schema: z.array(z.number().int().min(3)).readonly(),
    default: 'none',
    notInConfig: 'file descriptors belong to one process',
    flags: { none: 'file descriptors belong to the program that calls the API' },
    helper: 'process',
  },
  /** More paths to hide (relative to the home directory or absolute), besides ~/.ssh, ~/.aws and the other credential stores. */
  mask: {
    schema: z.array(z.string().min(1)).readonly(),
    default: 'none (the credential stores are always hidden)',
    group: 'Secrets:',
    flags: [{ name: 'mask', type: 'string', array: true, describe: 'Hide one more path (relative to home, or absolute)' }],
    fromFlags: (flags) => given(list(flags.mask)),
    helper: 'masks',
  },
  /** Credential paths to show after all, e.g. ['.npmrc'] for a test that publishes. */
  allowHome: {
    schema: z.array(z.string().min(1)).readonly(),
    default: 'none',
    group: 'Secrets:',
    flags: [
      { name: 'allow-home', type: 'string', array: true, describe: 'Show a masked credential path, e.g. .npmrc (~/.ssh, ~/.aws, ~/.kube, ... are hidden)' },
    ],
    fromFlags: (flags) => given(list(flags.allowHome)),
    helper: 'masks',
  },
  /** Inherited variables that look like secrets (…TOKEN, …PASSWORD, …_KEY, URLs with a password) or host sockets are dropped unless named here. */
  passEnv: {
    schema: z.array(z.string().min(1)).readonly(),
    default: 'none',
    group: 'Secrets:',
    flags: [
      {
        name: 'pass-env',
        type: 'string',
        array: true,
        describe: 'Pass NAME although it looks like a credential (…TOKEN, …SECRET, …PASSWORD, …_KEY, a URL with a password) or a host socket',
      },
    ],
    fromFlags: (flags) => given(list(flags.passEnv)),
    helper: { none: "the environment is the helper process's own (env.ts: sandboxEnv)" },
  },
  /** Memory cap of the whole sandbox (bytes or '512m'); needs a delegated cgroup v2 subtree. */
  memory: {
    schema: size,
    default: 'none',
    group: 'Limits:',
    flags: [{ name: 'memory', type: 'string', describe: 'Memory cap per sandbox, e.g. 512m (needs a delegated cgroup v2 subtree)' }],
    helper: { none: "a limit of the sandbox's cgroup (cgroup.ts); the helper is told only --cgroup" },
  },
  /** Most processes and threads the sandbox may hold at once. Default 4096 (a fork bomb stays in its sandbox). */
  pids: {
    schema: z.union([z.number().int().positive(), z.literal('unlimited')]),
    default: '4096',
    group: 'Limits:',
    flags: [{ name: 'pids', type: 'string', describe: 'Most processes and threads per sandbox, or unlimited (default 4096)' }],
    fromFlags: (flags) => (flags.pids === undefined ? undefined : parsePids(String(flags.pids))),
    helper: 'process',
  },
  /** CPU time share in cores, e.g. 1.5; needs a delegated cgroup v2 subtree. */
  cpus: {
    schema: z.number().positive(),
    default: 'none',
    group: 'Limits:',
    flags: [{ name: 'cpus', type: 'string', describe: 'CPU share per sandbox in cores, e.g. 1.5 (needs a delegated cgroup v2 subtree)' }],
    fromFlags: (flags) => (flags.cpus === undefined ? undefined : parseCpus(String(flags.cpus))),
    helper: { none: "a limit of the sandbox's cgroup (cgroup.ts); the helper is told only --cgroup" },
  },
  /** The delegated cgroup v2 directory sandboxes are created in; 'self': the one we run in. Default: $SANDBOX_RUN_CGROUP. */
  cgroupParent: {
    schema: z.string().min(1),
    default: '$SANDBOX_RUN_CGROUP',
    group: 'Limits:',
    flags: [
      { name: 'cgroup-parent', type: 'string', describe: "Delegated cgroup v2 directory for per-sandbox cgroups, or 'self' (default: $SANDBOX_RUN_CGROUP)" },
    ],
    helper: { none: 'where the cgroup is made (cgroup.ts); the helper is told only --cgroup DIR' },
  },
} as const satisfies Record<string, OptionSpec>;

export type SandboxOptionName = keyof typeof SANDBOX_OPTIONS;

/** The options as a list, in the table's order. */
export const SANDBOX_OPTION_NAMES = Object.keys(SANDBOX_OPTIONS) as SandboxOptionName[];
