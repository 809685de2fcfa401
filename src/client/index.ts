export type { ClientOptions } from './http-client.js';
export { UserClient } from './user-client.js';
export type { BulkAnswer, NetworkState, TaskStatus, TransformationInput } from './user-client.js';
export { ComputeClient } from './compute-client.js';
export type { Claim } from './compute-client.js';
