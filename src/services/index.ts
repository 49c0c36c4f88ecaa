export { SERVICE_LOG_DIR, Service, stopServices } from './service.js';
export type { ReadinessProbe, ServiceSpec } from './types.js';
