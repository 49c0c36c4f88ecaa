export { SERVICE_LOG_DIR, Service } from './service.js';
export type { ReadinessProbe, ServiceSpec } from './types.js';
