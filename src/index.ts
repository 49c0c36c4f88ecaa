/**
 * sandbox-run: rootless sandboxes for parallel tests.
 *
 * - {@link run}: one command in a fresh sandbox.
 * - {@link Sandbox}: a sandbox that stays alive while you start processes in it.
 */
export { run, spawn } from './sandbox/run.js';
export { Sandbox, type ExecOptions } from './sandbox/sandbox.js';
export type { SandboxOptions, OverlayMount, BindMount, WorkdirMode, RlimitName, RlimitValue } from './sandbox/options.js';
export type { ProcessOptions, SandboxResult } from './sandbox/process.js';
export { SandboxError, ExitCode, type SandboxErrorCode } from './errors.js';
export { runDoctor, type DoctorCheck } from './doctor/checks.js';
export { defineConfig, type SandboxRunConfig } from './config/types.js';
export { createSandbox, type CreateSandboxOptions } from './sandbox/create.js';
export { Service, type ServiceSpec, type ReadinessProbe } from './services/index.js';
export {
  postgres,
  findPostgresBindir,
  type PostgresAuth,
  type PostgresOptions,
  type PostgresRole,
  type PostgresSeed,
  type PostgresTls,
  type Preset,
  type PresetParts,
  type PrepareOptions,
  type PrepareResult,
} from './presets/index.js';
export { createPool, SandboxPool, type PoolOptions, type AcquireOptions, type LayerMount, type LayerSource } from './pool/index.js';
export { openStore, defaultStoreDir, LayerStore, STORE_VERSION, type LayerLease, type PruneResult, type BuildOptions, type ExportOptions, type ArchiveManifest, type DiffEntry, type LayerInfo, type LayerRecipe } from './layers/index.js';
export { exportOci, type OciDescriptor } from './layers/index.js';
export { importImage, storeName, type ImageImport, type ImageImportOptions, type ImageConfig } from './layers/index.js';
