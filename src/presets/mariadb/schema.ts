import { z } from 'zod';

/** MariadbOptions as data (a config file's `{ "mariadb": { ... } }` or `{ "mysql": ... }`): everything but `seed.run` and `store`. */
export const mariadbOptionsSchema = z.strictObject({
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
  rootPassword: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  bin: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  omitEnv: z.array(z.string().min(1)).optional(),
  startTimeoutMs: z.number().int().positive().optional(),
  layer: z.string().min(1).optional(),
  baseDir: z.string().min(1).optional(),
});
