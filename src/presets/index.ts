export { postgres, findPostgresBindir, type PostgresAuth, type PostgresOptions, type PostgresRole, type PostgresSeed, type PostgresTls } from './postgres/index.js';
export type { Preset, PresetParts, PrepareOptions, PrepareResult } from './types.js';
