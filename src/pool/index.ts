export { createPool, SandboxPool, type PoolOptions } from './pool.js';
