export type { LayerMount, LayerSource } from './layers.js';
export { type AcquireOptions, createPool, type PoolOptions, SandboxPool } from './pool.js';
