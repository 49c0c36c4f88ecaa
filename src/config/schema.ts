import { z } from 'zod';
import { type OptionSpec, SANDBOX_OPTIONS } from '../sandbox/option-table.js';

/**
 * A config file's `sandbox` section: every option of the table that a
 * config file may set (option-table.ts says which may not, and why).
 */
const sandbox = z.strictObject(
  Object.fromEntries(
    Object.entries(SANDBOX_OPTIONS as Record<string, OptionSpec>)
      .filter(([, spec]) => !spec.notInConfig)
      .map(([name, spec]) => [name, spec.schema.optional()]),
  ),
);

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
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { prepare?: unknown }).prepare === 'function' &&
    typeof (value as { forSandbox?: unknown }).forSandbox === 'function',
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
  sharedCaches: z.boolean().optional(),
});

/** One line per problem: `sandbox.network: expected one of "none"|"host"`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`).join('; ');
}
