export { postgres, findPostgresBindir, type PostgresOptions, type PostgresSeed } from './postgres.js';
export type { Preset, PresetParts } from './types.js';
