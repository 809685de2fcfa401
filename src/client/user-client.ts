import type { Readable } from 'node:stream';
import type { NetworkView, ResultView, TaskView, TransformationView } from '../domain/api-views.js';
import type { ClientOptions } from './http-client.js';
import { HttpClient } from './http-client.js';

export type { NetworkView, ResultView, TaskView, TransformationView };
export type NetworkState = 'active' | 'inactive' | 'invalid' | 'deleted';
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

  setTaskStatus(tasks: readonly string[], status: 'waiting' | 'invalid' | 'deleted') {
    return this.http.json<{ tasks: BulkAnswer<TaskStatus>[]; cascaded: string[] }>('/tasks/status', {
      method: 'POST',
      body: { tasks, status },
    });
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
  async downloadResult(id: string): Promise<Readable> {
    const response = await this.http.request(`/results/${encodeURIComponent(id)}/download`);
    return response.body;
  }

  scopeStatus(scope?: string) {
    return this.http.json<Record<string, Partial<Record<TaskStatus, number>>>>('/status', {
      query: { scope },
    });
  }
}
