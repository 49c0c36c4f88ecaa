export { Service, SERVICE_LOG_DIR } from './service.js';
export type { ServiceSpec, ReadinessProbe } from './types.js';
