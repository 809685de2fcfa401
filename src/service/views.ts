import type { NetworkRow, TransformationRow } from '../store/queries/networks.js';
import type { ResultRow, TaskRow } from '../store/queries/tasks.js';
import type {
  NetworkView,
  ProgressView,
  ResultView,
  TaskView,
  TransformationView,
} from '../domain/api-views.js';

export type { NetworkView, ResultView, TaskView, TransformationView };

/** The API's shapes: camelCase, no internal columns (never a lease token to a user). */
export function networkView(row: NetworkRow, extra: { transformationCount?: number } = {}): NetworkView {
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

export function transformationView(row: TransformationRow): TransformationView {
  return {
    key: row.key,
    scope: row.scope,
    name: row.name,
    protocol: row.protocol,
    inputs: JSON.parse(row.inputs) as unknown,
    createdAt: row.created_at,
  };
}

export function taskView(row: TaskRow): TaskView {
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
    progress: progressView(row),
  };
}

/** A running task's last reported progress; progress belongs to a lease, so none otherwise. */
export function progressView(row: TaskRow): ProgressView | null {
  if (row.status !== 'running' || row.progress_at === null) return null;
  return { fraction: row.progress_fraction, message: row.progress_message, at: row.progress_at };
}

export function resultView(row: ResultRow): ResultView {
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
