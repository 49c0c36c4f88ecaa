export { type ImageServiceOptions, type ImageServiceReady, imageService } from './image-service.js';
export { type MariadbOptions, type MariadbSeed, mariadb, mysql } from './mariadb/index.js';
export {
  type CopyUp,
  type CopyUpChoice,
  type CopyUpMechanism,
  findPostgresBindir,
  type PostgresAuth,
  type PostgresOptions,
  type PostgresRole,
  type PostgresSeed,
  type PostgresTls,
  postgres,
} from './postgres/index.js';
export { type RedisCommand, type RedisOptions, type RedisSeed, redis, valkey } from './redis/index.js';
export type { PrepareOptions, PrepareResult, Preset, PresetParts } from './types.js';
