import { resolve } from 'node:path';
import { z } from 'zod';
import { type MariadbOptions, mariadb, mysql } from '../presets/mariadb/index.js';
import { mariadbOptionsSchema } from '../presets/mariadb/schema.js';
import { type PostgresOptions, postgres } from '../presets/postgres/index.js';
import { type RedisOptions, redis } from '../presets/redis/index.js';
import { redisOptionsSchema } from '../presets/redis/schema.js';
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
  image: z.string().min(1).optional(),
  startTimeoutMs: z.number().int().positive().optional(),
  layer: z.string().min(1).optional(),
  baseDir: z.string().min(1).optional(),
  checksums: z.boolean().optional(),
  copyUp: z.enum(['auto', 'reflink', 'lazy-open', 'pages', 'overlay']).optional(),
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
const DESCRIBED = {
  postgres: z.strictObject({ postgres: postgresOptions }),
  redis: z.strictObject({ redis: redisOptionsSchema }),
  valkey: z.strictObject({ valkey: redisOptionsSchema.omit({ server: true }) }),
  mariadb: z.strictObject({ mariadb: mariadbOptionsSchema }),
  mysql: z.strictObject({ mysql: mariadbOptionsSchema }),
} as const;
const described = z.union(Object.values(DESCRIBED));

/** The schema of a preset given as data, by its one key; unknown names get a schema that says which exist. */
function describedSchema(entry: object): z.ZodType<PresetEntry> {
  const keys = Object.keys(entry);
  const known = Object.keys(DESCRIBED).join(', ');
  const schema = keys.length === 1 ? DESCRIBED[keys[0] as keyof typeof DESCRIBED] : undefined;
  return (
    (schema as z.ZodType<PresetEntry> | undefined) ??
    z.never({ error: `expected one key, the preset's name (${known}), got ${keys.length ? keys.join(', ') : 'none'}` })
  );
}

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
    const result = (asData ? describedSchema(entry) : instance).safeParse(entry);
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
    const base = (options: { baseDir?: string }) => ({ baseDir: resolve(configDir, options.baseDir ?? '.') });
    if ('redis' in entry && !('prepare' in entry)) return redis({ ...(entry.redis as RedisOptions), ...base(entry.redis) });
    if ('valkey' in entry && !('prepare' in entry)) return redis({ ...(entry.valkey as RedisOptions), ...base(entry.valkey), server: 'valkey' });
    if ('mariadb' in entry && !('prepare' in entry)) return mariadb({ ...(entry.mariadb as MariadbOptions), ...base(entry.mariadb) });
    if ('mysql' in entry && !('prepare' in entry)) return mysql({ ...(entry.mysql as MariadbOptions), ...base(entry.mysql) });
    const preset = entry as Preset;
    preset.resolveFrom?.(configDir);
    return preset;
  });
}
