export { createPool, SandboxPool, type PoolOptions, type AcquireOptions } from './pool.js';
export type { LayerMount, LayerSource } from './layers.js';
