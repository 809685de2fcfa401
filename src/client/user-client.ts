import type { Readable } from 'node:stream';
import type {
  AttemptView,
  FailureView,
  NetworkResultView,
  NetworkView,
  ResultView,
  TaskDetail,
  TaskView,
  TransformationView,
} from '../domain/api-views.js';
import type { DownloadNetworkResultsOptions, DownloadSummary } from './download-results.js';
import { downloadNetworkResults } from './download-results.js';
import type { ClientOptions } from './http-client.js';
import { HttpClient } from './http-client.js';
import type { NetworkState } from '../domain/network-state.js';
import type { DeliveryView, EventView, StrategyView, WebhookView } from '../domain/event-types.js';
import { AthanorError } from '../domain/errors.js';
import { parseEventStream } from './event-stream.js';

export type { DeliveryView, EventView, StrategyView, WebhookView };

export interface EventsQuery {
  readonly after?: number;
  readonly scope?: string;
  /** Comma separated event types. */
  readonly type?: string;
  readonly network?: string;
  readonly limit?: number;
}

import type { ResultOutcome } from '../domain/outcomes.js';

export type {
  AttemptView,
  DownloadNetworkResultsOptions,
  DownloadSummary,
  FailureView,
  NetworkResultView,
  NetworkView,
  ResultView,
  TaskDetail,
  TaskView,
  TransformationView,
};
export type { NetworkState };
export type TaskStatus = TaskView['status'];

export interface TransformationInput {
  readonly name: string;
  readonly protocol: string;
  readonly inputs: unknown;
}

export interface BulkAnswer<T> {
  readonly task: string;
  readonly result: T | null;
  readonly error?: string;
}

export interface PageQuery {
  readonly limit?: number;
  readonly after?: string;
}

/** A typed client for the user API (`/v1`); also the public SDK. */
export class UserClient {
  readonly http: HttpClient;

  constructor(options: ClientOptions) {
    this.http = new HttpClient(options, '/v1');
  }

  whoami() {
    return this.http.json<{ kind: string; identifier: string; scopes: string[] }>('/whoami');
  }

  submitNetwork(network: {
    scope: string;
    name: string;
    transformations: readonly TransformationInput[];
    state?: NetworkState;
  }) {
    return this.http.json<{ key: string; created: boolean; transformations: string[] }>('/networks', {
      method: 'POST',
      body: network,
    });
  }

  listNetworks(query: PageQuery & { scope?: string; state?: NetworkState; name?: string } = {}) {
    return this.http.json<NetworkView[]>('/networks', { query });
  }

  getNetwork(key: string) {
    return this.http.json<NetworkView>(`/networks/${encodeURIComponent(key)}`);
  }

  networkTransformations(key: string, query: PageQuery = {}) {
    return this.http.json<TransformationView[]>(`/networks/${encodeURIComponent(key)}/transformations`, {
      query,
    });
  }

  networkTasks(key: string, query: PageQuery = {}) {
    return this.http.json<(TaskView & { weight: number })[]>(`/networks/${encodeURIComponent(key)}/tasks`, {
      query,
    });
  }

  networkStatus(key: string) {
    return this.http.json<Partial<Record<TaskStatus, number>>>(`/networks/${encodeURIComponent(key)}/status`);
  }

  setNetworkState(keys: readonly string[], state: NetworkState) {
    return this.http.json<{ key: string; state: NetworkState | null }[]>('/networks/state', {
      method: 'POST',
      body: { networks: keys, state },
    });
  }

  setNetworkWeight(key: string, weight: number) {
    return this.http.json<NetworkView>(`/networks/${encodeURIComponent(key)}/weight`, {
      method: 'PUT',
      body: { weight },
    });
  }

  actionTasks(networkKey: string, tasks: readonly string[], weight?: number) {
    return this.http.json<BulkAnswer<boolean>[]>(`/networks/${encodeURIComponent(networkKey)}/actions`, {
      method: 'POST',
      body: { tasks, weight },
    });
  }

  cancelTasks(networkKey: string, tasks: readonly string[]) {
    return this.http.json<BulkAnswer<boolean>[]>(
      `/networks/${encodeURIComponent(networkKey)}/cancellations`,
      {
        method: 'POST',
        body: { tasks },
      },
    );
  }

  restartPolicies(networkKey: string) {
    return this.http.json<{ pattern: string; maxRetries: number }[]>(
      `/networks/${encodeURIComponent(networkKey)}/restart-policies`,
    );
  }

  addRestartPolicies(networkKey: string, policies: readonly { pattern: string; maxRetries: number }[]) {
    return this.http.json<{ pattern: string; maxRetries: number }[]>(
      `/networks/${encodeURIComponent(networkKey)}/restart-policies`,
      { method: 'POST', body: { policies } },
    );
  }

  removeRestartPolicies(networkKey: string, patterns: readonly string[]) {
    return this.http.json<{ pattern: string; maxRetries: number }[]>(
      `/networks/${encodeURIComponent(networkKey)}/restart-policies/removals`,
      { method: 'POST', body: { patterns } },
    );
  }

  listTransformations(query: PageQuery & { scope?: string; name?: string; protocol?: string } = {}) {
    return this.http.json<TransformationView[]>('/transformations', { query });
  }

  getTransformation(key: string) {
    return this.http.json<TransformationView>(`/transformations/${encodeURIComponent(key)}`);
  }

  createTasks(
    transformationKey: string,
    options: { count?: number; extends?: string; priority?: number } = {},
  ) {
    return this.http.json<TaskView[]>(`/transformations/${encodeURIComponent(transformationKey)}/tasks`, {
      method: 'POST',
      body: options,
    });
  }

  listTasks(
    query: PageQuery & {
      scope?: string;
      status?: TaskStatus;
      transformation?: string;
      network?: string;
    } = {},
  ) {
    return this.http.json<TaskView[]>('/tasks', { query });
  }

  getTask(id: string) {
    return this.http.json<TaskView>(`/tasks/${encodeURIComponent(id)}`);
  }

  /** Sets the status of tasks; `reason` is kept on each task and shown in its history. */
  setTaskStatus(tasks: readonly string[], status: 'waiting' | 'invalid' | 'deleted', reason?: string) {
    return this.http.json<{ tasks: BulkAnswer<TaskStatus>[]; cascaded: string[] }>('/tasks/status', {
      method: 'POST',
      body: { tasks, status, ...(reason === undefined ? {} : { reason }) },
    });
  }

  /** A task's attempts, one per claim, oldest first. */
  taskAttempts(taskId: string) {
    return this.http.json<AttemptView[]>(`/tasks/${encodeURIComponent(taskId)}/attempts`);
  }

  /** Status, attempts, lease holder and last failure of up to 10,000 tasks. */
  taskDetails(tasks: readonly string[]) {
    return this.http.json<BulkAnswer<TaskDetail>[]>('/tasks/details', { method: 'POST', body: { tasks } });
  }

  /** One page of a network's failed attempts, with their full error text. */
  networkFailures(networkKey: string, query: PageQuery = {}) {
    return this.http.json<FailureView[]>(`/networks/${encodeURIComponent(networkKey)}/failures`, { query });
  }

  /** One page of a network's results, one per transformation, in transformation key order. */
  networkResults(networkKey: string, query: PageQuery & { outcome?: ResultOutcome } = {}) {
    return this.http.json<NetworkResultView[]>(`/networks/${encodeURIComponent(networkKey)}/results`, {
      query,
    });
  }

  /** Downloads every result of a network into `dir` (parallel, resumable, through a local cache). */
  downloadNetworkResults(
    networkKey: string,
    dir: string,
    options: DownloadNetworkResultsOptions = {},
  ): Promise<DownloadSummary> {
    return downloadNetworkResults(this, networkKey, dir, options);
  }

  /** One page of the failed attempts in a scope (wildcards allowed). */
  failures(query: PageQuery & { scope?: string } = {}) {
    return this.http.json<FailureView[]>('/failures', { query });
  }

  setTaskPriority(tasks: readonly string[], priority: number) {
    return this.http.json<BulkAnswer<number>[]>('/tasks/priority', {
      method: 'POST',
      body: { tasks, priority },
    });
  }

  taskResults(taskId: string) {
    return this.http.json<ResultView[]>(`/tasks/${encodeURIComponent(taskId)}/results`);
  }

  getResult(id: string) {
    return this.http.json<ResultView>(`/results/${encodeURIComponent(id)}`);
  }

  /** The result's bytes as a stream: never buffered whole. */
  /** The log of a task's `attempt`th attempt (1 for the first), streamed. */
  /** An attempt's log: the whole of it once uploaded, else what the running attempt sent so far. */
  async attemptLog(taskId: string, attempt: number): Promise<Readable> {
    return (await this.readAttemptLog(taskId, attempt)).stream;
  }

  /**
   * An attempt's log from byte `offset` on, and whether it is `complete` (the uploaded log) or
   * what the attempt appended so far while it ran (`running` says whether it still does).
   */
  async readAttemptLog(
    taskId: string,
    attempt: number,
    offset = 0,
  ): Promise<{ stream: Readable; complete: boolean; running: boolean }> {
    const response = await this.http.request(
      `/tasks/${encodeURIComponent(taskId)}/attempts/${encodeURIComponent(String(attempt))}/log`,
      offset > 0 ? { query: { offset } } : {},
    );
    return {
      stream: response.body,
      complete: response.headers['x-athanor-log-complete'] !== 'false',
      running: response.headers['x-athanor-attempt-running'] === 'true',
    };
  }

  async downloadResult(id: string): Promise<Readable> {
    const response = await this.http.request(`/results/${encodeURIComponent(id)}/download`);
    return response.body;
  }

  scopeStatus(scope?: string) {
    return this.http.json<Record<string, Partial<Record<TaskStatus, number>>>>('/status', {
      query: { scope },
    });
  }

  /** A page of events after `after`, oldest first, with the cursor of the next page. */
  events(query: EventsQuery = {}) {
    return this.http.json<{ events: EventView[]; next: number }>('/events', { query });
  }

  /**
   * Follows the event log as Server-Sent Events from `after` on; reconnects with the last id seen
   * (Last-Event-ID) when the connection drops, so no event is missed or repeated.
   */
  async *followEvents(query: EventsQuery = {}, signal?: AbortSignal): AsyncGenerator<EventView> {
    let last = query.after;
    const { after: _, ...filter } = query;
    while (!signal?.aborted) {
      try {
        const response = await this.http.request('/events', {
          query: filter,
          headers: {
            accept: 'text/event-stream',
            ...(last === undefined ? {} : { 'last-event-id': String(last) }),
          },
        });
        signal?.addEventListener('abort', () => response.body.destroy(), { once: true });
        for await (const event of parseEventStream(response.body)) {
          last = event.id;
          yield event;
        }
      } catch (error) {
        if (signal?.aborted) return;
        if (
          error instanceof AthanorError &&
          error.code !== 'database_unavailable' &&
          error.code !== 'maintenance'
        )
          throw error;
      }
      if (!signal?.aborted) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  addWebhook(input: { url: string; scope: string; events?: readonly string[] }) {
    return this.http.json<WebhookView & { secret: string }>('/webhooks', { method: 'POST', body: input });
  }

  listWebhooks() {
    return this.http.json<WebhookView[]>('/webhooks');
  }

  getWebhook(id: string, deliveries?: number) {
    return this.http.json<WebhookView & { deliveries: DeliveryView[] }>(
      `/webhooks/${encodeURIComponent(id)}`,
      {
        query: { deliveries },
      },
    );
  }

  removeWebhook(id: string) {
    return this.http.json<{ id: string; removed: true }>(`/webhooks/${encodeURIComponent(id)}`, {
      method: 'DELETE',
    });
  }

  testWebhook(id: string) {
    return this.http.json<{
      ok: boolean;
      statusCode: number | null;
      error: string | null;
      durationMs: number;
    }>(`/webhooks/${encodeURIComponent(id)}/test`, { method: 'POST' });
  }

  enableWebhook(id: string) {
    return this.http.json<WebhookView>(`/webhooks/${encodeURIComponent(id)}/enable`, { method: 'POST' });
  }

  listStrategies() {
    return this.http.json<{ name: string; description: string; parameters: unknown }[]>('/strategies');
  }

  setStrategy(networkKey: string, name: string, params?: unknown) {
    return this.http.json<StrategyView>(`/networks/${encodeURIComponent(networkKey)}/strategy`, {
      method: 'PUT',
      body: { name, ...(params === undefined ? {} : { params }) },
    });
  }

  getStrategy(networkKey: string) {
    return this.http.json<StrategyView>(`/networks/${encodeURIComponent(networkKey)}/strategy`);
  }

  removeStrategy(networkKey: string) {
    return this.http.json<{ network: string; removed: true }>(
      `/networks/${encodeURIComponent(networkKey)}/strategy`,
      {
        method: 'DELETE',
      },
    );
  }

  previewStrategy(networkKey: string) {
    return this.http.json<{ strategy: StrategyView; actions: unknown[] }>(
      `/networks/${encodeURIComponent(networkKey)}/strategy/preview`,
    );
  }

  /** Makes sure `count` tasks of the transformation exist; creates only the difference (idempotent). */
  ensureTasks(
    transformationKey: string,
    input: { count: number; network?: string; priority?: number; weight?: number },
  ) {
    return this.http.json<{ transformation: string; existing: number; created: string[] }>(
      `/transformations/${encodeURIComponent(transformationKey)}/tasks/ensure`,
      { method: 'POST', body: input },
    );
  }
}
