import { z } from 'zod';

/** RedisOptions as data (a config file's `{ "redis": { ... } }`): everything but `seed.run` (a function) and `store` (an object). */
export const redisOptionsSchema = z.strictObject({
  server: z.enum(['redis', 'valkey']).optional(),
  bin: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  password: z.string().min(1).optional(),
  seed: z
    .strictObject({
      rdb: z.string().min(1).optional(),
      aof: z.string().min(1).optional(),
      commands: z.array(z.union([z.string().min(1), z.array(z.string()).min(1)])).optional(),
      command: z.string().min(1).optional(),
      inputs: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  persistence: z.boolean().optional(),
  config: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  omitEnv: z.array(z.string().min(1)).optional(),
  startTimeoutMs: z.number().int().positive().optional(),
  layer: z.string().min(1).optional(),
  baseDir: z.string().min(1).optional(),
});
