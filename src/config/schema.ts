import { z } from 'zod';

const overlay = z.strictObject({
  lower: z.union([z.string(), z.array(z.string()).min(1)]),
  target: z.string().startsWith('/', 'must be an absolute path inside the sandbox'),
  upper: z.strictObject({ upper: z.string(), work: z.string() }).optional(),
});
const bind = z.strictObject({ source: z.string(), target: z.string().optional(), readonly: z.boolean().optional() });
const size = z.union([z.number().int().positive(), z.string().regex(/^\d+\s*[kmgt]?i?b?$/i, 'expected a size such as 512m')]);
const rlimit = z.union([z.number().int().nonnegative(), z.literal('unlimited')]);

const sandbox = z.strictObject({
  workdir: z.enum(['cow', 'ro', 'rw', 'none']).optional(),
  overlays: z.array(overlay).optional(),
  binds: z.array(bind).optional(),
  tmpfs: z.array(z.string()).optional(),
  network: z.enum(['none', 'host']).optional(),
  env: z.record(z.string(), z.string().optional()).optional(),
  inheritEnv: z.boolean().optional(),
  hostname: z.string().min(1).optional(),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  tmpfsSize: size.optional(),
  upperSize: size.optional(),
  rlimits: z.partialRecord(z.enum(['nofile', 'fsize', 'cpu', 'core', 'nproc', 'as', 'data', 'stack']), z.union([rlimit, z.tuple([rlimit, rlimit])])).optional(),
  keepFds: z.array(z.number().int().min(3)).optional(),
  mask: z.array(z.string().min(1)).optional(),
  allowHome: z.array(z.string().min(1)).optional(),
  passEnv: z.array(z.string().min(1)).optional(),
  memory: size.optional(),
  pids: z.union([z.number().int().positive(), z.literal('unlimited')]).optional(),
  cpus: z.number().positive().optional(),
  cgroupParent: z.string().min(1).optional(),
});

const probe = z.union([
  z.strictObject({ tcp: z.number().int().min(1).max(65535) }),
  z.strictObject({ socket: z.string().startsWith('/') }),
  z.strictObject({ command: z.array(z.string()).min(1) }),
  z.strictObject({ log: z.union([z.string(), z.instanceof(RegExp)]) }),
]);
const service = z.strictObject({
  name: z.string().regex(/^[\w.-]+$/, 'letters, digits, . _ - only'),
  command: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().startsWith('/').optional(),
  ready: probe.optional(),
  startTimeoutMs: z.number().int().positive().optional(),
  stopSignal: z.string().optional(),
  stopGraceMs: z.number().int().nonnegative().optional(),
  exports: z.record(z.string(), z.string()).optional(),
});
const preset = z.custom<object>(
  (value) => typeof value === 'object' && value !== null && typeof (value as { prepare?: unknown }).prepare === 'function' && typeof (value as { forSandbox?: unknown }).forSandbox === 'function',
  'expected a preset such as postgres({ ... })',
);

/** The config file's shape; unknown keys are errors (a typo should not be silently ignored). */
export const configSchema = z.strictObject({
  sandbox: sandbox.optional(),
  presets: z.array(preset).optional(),
  services: z.array(service).optional(),
  outputs: z.array(z.string().min(1)).optional(),
  env: z.record(z.string(), z.string()).optional(),
  parallel: z.number().int().positive().optional(),
  timeout: z.union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, 'expected a duration such as 90s or 10m')]).optional(),
  output: z.enum(['grouped', 'prefixed', 'quiet']).optional(),
});

/** One line per problem: `sandbox.network: expected one of "none"|"host"`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
