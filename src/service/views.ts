import type { NetworkRow, TransformationRow } from '../store/queries/networks.js';
import type { ResultRow, TaskRow } from '../store/queries/tasks.js';

/** The API's shapes: camelCase, no internal columns (never a lease token to a user). */
export function networkView(row: NetworkRow, extra: { transformationCount?: number } = {}) {
  return {
    key: row.key,
    scope: row.scope,
    name: row.name,
    state: row.state,
    weight: row.weight,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    ...extra,
  };
}
export type NetworkView = ReturnType<typeof networkView>;

export function transformationView(row: TransformationRow) {
  return {
    key: row.key,
    scope: row.scope,
    name: row.name,
    protocol: row.protocol,
    inputs: JSON.parse(row.inputs) as unknown,
    createdAt: row.created_at,
  };
}
export type TransformationView = ReturnType<typeof transformationView>;

export function taskView(row: TaskRow) {
  return {
    id: row.id,
    scope: row.scope,
    transformation: row.transformation_key,
    extends: row.extends_task_id,
    status: row.status,
    priority: row.priority,
    attempts: row.attempts,
    restarts: row.restarts,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    statusChangedAt: row.status_changed_at ?? row.updated_at,
    reason: row.status_reason,
    lastError: row.last_error,
  };
}
export type TaskView = ReturnType<typeof taskView>;

export function resultView(row: ResultRow) {
  return {
    id: row.id,
    task: row.task_id,
    scope: row.scope,
    attempt: row.attempt,
    outcome: row.outcome,
    sha256: row.blob_sha256,
    sizeBytes: row.size_bytes,
    error: row.error,
    computeService: row.compute_service_id,
    createdAt: row.created_at,
  };
}
export type ResultView = ReturnType<typeof resultView>;
