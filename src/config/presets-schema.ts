import { resolve } from 'node:path';
import { z } from 'zod';
import { type PostgresOptions, postgres } from '../presets/postgres/index.js';
import type { Preset } from '../presets/types.js';

const role = z.strictObject({
  name: z.string().min(1),
  password: z.string().optional(),
  login: z.boolean().optional(),
  superuser: z.boolean().optional(),
  createdb: z.boolean().optional(),
  createrole: z.boolean().optional(),
  replication: z.boolean().optional(),
  bypassrls: z.boolean().optional(),
  inRoles: z.array(z.string().min(1)).optional(),
});

/** PostgresOptions as data: everything but `seed.run` (a function) and `store` (an object). */
const postgresOptions = z.strictObject({
  seed: z
    .strictObject({
      sql: z.array(z.string().min(1)).optional(),
      command: z.string().min(1).optional(),
      inputs: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  database: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  auth: z.enum(['trust', 'md5', 'scram-sha-256', 'password']).optional(),
  roles: z.array(role).optional(),
  hba: z.array(z.string().min(1)).optional(),
  extensions: z.array(z.string().min(1)).optional(),
  ssl: z.union([z.boolean(), z.strictObject({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() })]).optional(),
  connect: z.enum(['tcp', 'socket']).optional(),
  omitEnv: z.array(z.string().min(1)).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  version: z.number().int().positive().optional(),
  bindir: z.string().min(1).optional(),
  startTimeoutMs: z.number().int().positive().optional(),
  layer: z.string().min(1).optional(),
  baseDir: z.string().min(1).optional(),
});

const instance = z.custom<Preset>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { prepare?: unknown }).prepare === 'function' &&
    typeof (value as { forSandbox?: unknown }).forSandbox === 'function',
  'expected a preset such as postgres({ ... }) or { "postgres": { ... } }',
);

/** A preset by name with its options as data, for `sandbox.config.json`: one key, the preset's name. */
const described = z.strictObject({ postgres: postgresOptions });

export type PresetEntry = Preset | z.infer<typeof described>;

/**
 * Validates `presets`: preset objects (from code) or `{ "postgres": { ... } }`
 * (from JSON or code). Each entry is checked against the one shape it can
 * be, so the error names the wrong key rather than "no union member matched".
 */
export function parsePresets(value: unknown): { entries: PresetEntry[] } | { error: string } {
  if (!Array.isArray(value)) return { error: 'presets: expected an array' };
  const entries: PresetEntry[] = [];
  const problems: string[] = [];
  value.forEach((entry: unknown, i) => {
    const asData = typeof entry === 'object' && entry !== null && typeof (entry as { prepare?: unknown }).prepare !== 'function';
    const result = (asData ? described : instance).safeParse(entry);
    if (result.success) entries.push(result.data);
    else for (const issue of result.error.issues) problems.push(`${['presets', i, ...issue.path].join('.')}: ${issue.message}`);
  });
  return problems.length ? { error: problems.join('; ') } : { entries };
}

/**
 * The config's presets as preset objects, relative paths resolved against
 * the config file's directory (those given as objects are told so through
 * resolveFrom, unless they were given their own baseDir).
 */
export function instantiatePresets(entries: readonly PresetEntry[], configDir: string): Preset[] {
  return entries.map((entry) => {
    if ('postgres' in entry && !('prepare' in entry)) {
      const options = entry.postgres as PostgresOptions;
      return postgres({ ...options, baseDir: resolve(configDir, options.baseDir ?? '.') });
    }
    const preset = entry as Preset;
    preset.resolveFrom?.(configDir);
    return preset;
  });
}
