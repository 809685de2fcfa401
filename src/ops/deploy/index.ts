export * from './colour-probe.js';
export * from './deploy-settings.js';
export * from './switch-colour.js';
export * from './upstream-file.js';
export * from './proxy-workers.js';
