import type { Readable } from 'node:stream';
import type {
  Claim,
  DemandView,
  ManagerDecision,
  ManagerInstruction,
  ManagerLaunch,
  ManagerView,
} from '../domain/api-views.js';
import type { ClientOptions } from './http-client.js';
import { HttpClient } from './http-client.js';

export type { Claim };

/** Small results to report and, optionally, the next claim: `exchange`'s request. */
export interface ExchangeRequest {
  readonly results: readonly {
    readonly task: string;
    readonly leaseToken: number;
    readonly outcome: 'ok' | 'failed';
    readonly body: Buffer;
  }[];
  readonly claim?: Parameters<ComputeClient['claim']>[1];
}

/** One answer per reported result (a stored result, or why it was refused) and the new claims. */
export interface ExchangeAnswer {
  readonly results: {
    readonly task: string;
    readonly leaseToken: number;
    readonly result?: { result: string; status: 'complete' | 'waiting' | 'error'; sha256: string };
    readonly error?: { code: string; status: number; message: string };
  }[];
  readonly claims: Claim[];
}

/**
 * A lease a heartbeat lists, with the task's progress since the last heartbeat when it has any,
 * and what its attempt's log gained (`text`, starting at byte `offset` of the log).
 */
export interface HeldLease {
  readonly task: string;
  readonly leaseToken: number;
  readonly progress?: { readonly fraction?: number; readonly message?: string };
  readonly log?: { readonly offset: number; readonly text: string };
}

/** A typed client for the compute API (`/compute/v1`). */
export class ComputeClient {
  readonly http: HttpClient;

  constructor(options: ClientOptions) {
    this.http = new HttpClient(options, '/compute/v1');
  }

  /** Registers a service; one a manager started names the manager and its launch. */
  register(name: string, hostname?: string, managed?: { manager: string; launch: string }) {
    return this.http.json<{ id: string; leaseTtlMs: number; registrationTtlMs: number }>('/services', {
      method: 'POST',
      body: { name, hostname, ...managed },
    });
  }

  /**
   * Keeps a registration alive. With `leases` (every lease the service holds), only those are
   * extended and the server releases the others; without, all of them are extended.
   */
  heartbeat(serviceId: string, leases?: readonly HeldLease[]) {
    return this.http.json<{
      leases: { task: string; leaseToken: number }[];
      leaseExpiresAt: string;
      /** Its manager scales in: finish what is held, claim nothing more, exit. */
      drain?: boolean;
    }>(
      `/services/${encodeURIComponent(serviceId)}/heartbeat`,
      leases ? { method: 'POST', body: { leases } } : { method: 'POST' },
    );
  }

  deregister(serviceId: string) {
    return this.http.json<{ released: string[] }>(`/services/${encodeURIComponent(serviceId)}`, {
      method: 'DELETE',
    });
  }

  claim(
    serviceId: string,
    request: {
      count: number;
      scopes?: string[];
      excludeScopes?: string[];
      protocols?: string[];
      waitMs?: number;
    },
  ) {
    return this.http.json<Claim[]>(`/services/${encodeURIComponent(serviceId)}/claims`, {
      method: 'POST',
      body: request,
      waitMs: request.waitMs,
    });
  }

  getTask(taskId: string, leaseToken: number) {
    return this.http.json<Claim>(`/tasks/${encodeURIComponent(taskId)}`, { query: { leaseToken } });
  }

  extendLease(taskId: string, leaseToken: number) {
    return this.http.json<{ task: string; leaseToken: number; leaseExpiresAt: string }>(
      `/tasks/${encodeURIComponent(taskId)}/heartbeat`,
      { method: 'POST', body: { leaseToken } },
    );
  }

  release(taskId: string, leaseToken: number) {
    return this.http.json<{ task: string; status: 'waiting' }>(
      `/tasks/${encodeURIComponent(taskId)}/release`,
      {
        method: 'POST',
        body: { leaseToken },
      },
    );
  }

  /** Streams a result (or, for a failure, the error text) with the lease's fencing token. */
  submitResult(taskId: string, leaseToken: number, outcome: 'ok' | 'failed', body: Readable | Buffer) {
    return this.http.json<{ result: string; status: 'complete' | 'waiting' | 'error'; sha256: string }>(
      `/tasks/${encodeURIComponent(taskId)}/result`,
      { method: 'PUT', query: { leaseToken, outcome }, stream: body },
    );
  }

  /**
   * Reports small results (each with its lease token; answered one by one, in order) and, with
   * `claim`, claims the next tasks, in one request.
   */
  exchange(serviceId: string, request: ExchangeRequest) {
    return this.http.json<ExchangeAnswer>(`/services/${encodeURIComponent(serviceId)}/exchange`, {
      method: 'POST',
      body: {
        results: request.results.map((r) => ({
          task: r.task,
          leaseToken: r.leaseToken,
          outcome: r.outcome,
          base64: r.body.toString('base64'),
        })),
        ...(request.claim ? { claim: request.claim } : {}),
      },
      waitMs: request.claim?.waitMs,
    });
  }

  /** Streams an attempt's log; allowed once per attempt, also after the attempt ended. */
  uploadLog(taskId: string, leaseToken: number, body: Readable | Buffer) {
    return this.http.json<{ task: string; sizeBytes: number; sha256: string }>(
      `/tasks/${encodeURIComponent(taskId)}/log`,
      { method: 'PUT', query: { leaseToken }, stream: body },
    );
  }

  async downloadResult(resultId: string): Promise<Readable> {
    const response = await this.http.request(`/results/${encodeURIComponent(resultId)}/download`);
    return response.body;
  }

  /** Claimable waiting tasks in the identity's scopes (or these), per scope and protocol. */
  demand(filter: { scopes?: readonly string[]; protocols?: readonly string[] } = {}) {
    return this.http.json<DemandView>('/demand', {
      query: {
        scope: filter.scopes ? [...filter.scopes] : undefined,
        protocol: filter.protocols ? [...filter.protocols] : undefined,
      },
    });
  }

  registerManager(registration: {
    name: string;
    hostname?: string;
    driver: string;
    scopes?: readonly string[];
    minServices: number;
    maxServices: number;
  }) {
    return this.http.json<{ id: string; registrationTtlMs: number; resumed: boolean }>('/managers', {
      method: 'POST',
      body: { ...registration, scopes: registration.scopes ? [...registration.scopes] : undefined },
    });
  }

  managerHeartbeat(
    managerId: string,
    report: {
      launches: readonly ManagerLaunch[];
      decisions?: readonly ManagerDecision[];
      drain?: readonly string[];
      protocols?: readonly string[];
    },
  ) {
    return this.http.json<ManagerInstruction>(`/managers/${encodeURIComponent(managerId)}/heartbeat`, {
      method: 'POST',
      body: report,
    });
  }

  deregisterManager(managerId: string) {
    return this.http.json<{ id: string; state: 'stopped' }>(`/managers/${encodeURIComponent(managerId)}`, {
      method: 'DELETE',
    });
  }

  listManagers() {
    return this.http.json<ManagerView[]>('/managers');
  }

  getManager(managerId: string) {
    return this.http.json<ManagerView>(`/managers/${encodeURIComponent(managerId)}`);
  }
}
