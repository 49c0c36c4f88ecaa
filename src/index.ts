/**
 * sandbox-run: rootless sandboxes for parallel tests.
 *
 * - {@link run}: one command in a fresh sandbox.
 * - {@link Sandbox}: a sandbox that stays alive while you start processes in it.
 */

export { defineConfig, type SandboxRunConfig } from './config/types.js';
export { type DoctorCheck, runDoctor } from './doctor/checks.js';
export { ExitCode, SandboxError, type SandboxErrorCode } from './errors.js';
export {
  type ArchiveManifest,
  type BuildOptions,
  type DiffEntry,
  defaultStoreDir,
  type ExportOptions,
  exportOci,
  type ImageConfig,
  type ImageImport,
  type ImageImportOptions,
  type ImagePull,
  importImage,
  type LayerInfo,
  type LayerLease,
  type LayerRecipe,
  LayerStore,
  type OciDescriptor,
  openStore,
  type PruneResult,
  type PullOptions,
  type PullProgress,
  pullImage,
  STORE_VERSION,
  storeName,
} from './layers/index.js';
export { type AcquireOptions, createPool, type LayerMount, type LayerSource, type PoolOptions, SandboxPool } from './pool/index.js';
export {
  type CopyUp,
  type CopyUpChoice,
  type CopyUpMechanism,
  findPostgresBindir,
  type ImageServiceOptions,
  type ImageServiceReady,
  imageService,
  type MariadbOptions,
  type MariadbSeed,
  mariadb,
  mysql,
  type PostgresAuth,
  type PostgresOptions,
  type PostgresRole,
  type PostgresSeed,
  type PostgresTls,
  type PrepareOptions,
  type PrepareResult,
  type Preset,
  type PresetParts,
  postgres,
  type RedisCommand,
  type RedisOptions,
  type RedisSeed,
  redis,
  valkey,
} from './presets/index.js';
export { type CreateSandboxOptions, createSandbox } from './sandbox/create.js';
export type { BindMount, ImageMountOption, OverlayMount, RlimitName, RlimitValue, SandboxOptions, WorkdirMode } from './sandbox/options.js';
export type { ProcessOptions, SandboxResult } from './sandbox/process.js';
export { run, spawn } from './sandbox/run.js';
export { type ExecOptions, Sandbox } from './sandbox/sandbox.js';
export { type ReadinessProbe, Service, type ServiceSpec } from './services/index.js';
