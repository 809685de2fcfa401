/**
 * The one error registry. Every error Athanor reports has a stable `code`, an HTTP status and a
 * CLI exit code; its message says what happened and what the operator can do next.
 */

/** Exit codes of the `athanor` command, printed by `athanor help exit-codes`. */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  checkFailed: 3,
  auth: 4,
  lockTimeout: 5,
  incompatibleSchema: 6,
  targetNotEmpty: 7,
  notPermitted: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeMeanings: Readonly<Record<ExitCode, string>> = {
  0: 'success',
  1: 'error (see the message), or migrations pending for `database status`',
  2: 'usage: a bad flag, argument, scope or identifier',
  3: 'a check failed or drift was found (schema, backup verification, backup age)',
  4: 'authentication failed: unknown identity, wrong key, disabled or expired',
  5: 'timed out waiting for a lock (another migration, backup or restore holds it)',
  6: 'incompatible schema: the database is newer than this release, or behind it',
  7: 'target not empty: restore refused (pass --force to take a safety backup and replace it)',
  8: 'not permitted: the identity is known but holds no scope (or role) covering what was asked, or its quota is used up',
};

interface ErrorKind {
  readonly status: number;
  readonly exitCode: ExitCode;
}

export const errorKinds = {
  invalid_argument: { status: 400, exitCode: ExitCode.usage },
  invalid_scope: { status: 400, exitCode: ExitCode.usage },
  invalid_identifier: { status: 400, exitCode: ExitCode.usage },
  invalid_key: { status: 400, exitCode: ExitCode.usage },
  invalid_config: { status: 500, exitCode: ExitCode.usage },
  validation_failed: { status: 400, exitCode: ExitCode.usage },
  body_too_large: { status: 413, exitCode: ExitCode.usage },
  limit_exceeded: { status: 413, exitCode: ExitCode.usage },
  identity_exists: { status: 409, exitCode: ExitCode.error },
  identity_not_found: { status: 404, exitCode: ExitCode.error },
  not_found: { status: 404, exitCode: ExitCode.error },
  conflict: { status: 409, exitCode: ExitCode.error },
  stale_lease: { status: 409, exitCode: ExitCode.error },
  result_conflict: { status: 409, exitCode: ExitCode.error },
  invalid_transition: { status: 409, exitCode: ExitCode.error },
  unauthenticated: { status: 401, exitCode: ExitCode.auth },
  forbidden: { status: 403, exitCode: ExitCode.notPermitted },
  rate_limited: { status: 429, exitCode: ExitCode.error },
  waiting_tasks_quota_exceeded: { status: 403, exitCode: ExitCode.notPermitted },
  networks_quota_exceeded: { status: 403, exitCode: ExitCode.notPermitted },
  maintenance: { status: 503, exitCode: ExitCode.error },
  lock_timeout: { status: 503, exitCode: ExitCode.lockTimeout },
  migration_drift: { status: 500, exitCode: ExitCode.checkFailed },
  schema_check_failed: { status: 500, exitCode: ExitCode.checkFailed },
  schema_behind: { status: 503, exitCode: ExitCode.incompatibleSchema },
  schema_newer: { status: 503, exitCode: ExitCode.incompatibleSchema },
  migration_failed: { status: 500, exitCode: ExitCode.error },
  database_unavailable: { status: 503, exitCode: ExitCode.error },
  objects_unavailable: { status: 503, exitCode: ExitCode.error },
  backup_target_unavailable: { status: 503, exitCode: ExitCode.error },
  target_not_empty: { status: 409, exitCode: ExitCode.targetNotEmpty },
  backup_not_found: { status: 404, exitCode: ExitCode.error },
  backup_corrupt: { status: 500, exitCode: ExitCode.checkFailed },
  backup_incompatible: { status: 500, exitCode: ExitCode.incompatibleSchema },
  backup_key_missing: { status: 500, exitCode: ExitCode.usage },
  backup_decryption_failed: { status: 403, exitCode: ExitCode.auth },
  backup_stale: { status: 503, exitCode: ExitCode.checkFailed },
  server_unreachable: { status: 503, exitCode: ExitCode.error },
  timed_out: { status: 504, exitCode: ExitCode.error },
  shutting_down: { status: 503, exitCode: ExitCode.error },
  deploy_not_ready: { status: 503, exitCode: ExitCode.checkFailed },
  deploy_proxy_failed: { status: 500, exitCode: ExitCode.error },
  deploy_drain_timeout: { status: 504, exitCode: ExitCode.checkFailed },
  internal: { status: 500, exitCode: ExitCode.error },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof errorKinds;

export class AthanorError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts for `--json` output and HTTP bodies; never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AthanorError';
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return errorKinds[this.code].status;
  }

  get exitCode(): ExitCode {
    return errorKinds[this.code].exitCode;
  }
}

export function isAthanorError(error: unknown): error is AthanorError {
  return error instanceof AthanorError;
}

/** An error as every caller sees it: HTTP bodies, `--json` output and audit details. */
export interface ErrorFacts {
  readonly code: string;
  readonly message: string;
}

/** The one mapping from an error to `{code, message}`: anything outside the registry is `internal`. */
export function errorFacts(error: unknown): ErrorFacts {
  return {
    code: isAthanorError(error) ? error.code : 'internal',
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * The error body of every HTTP answer and of `--json` output: `{error: {code, message}}`. It takes
 * a registry error so an unexpected error's own text (which may hold internals) is never sent.
 */
export function errorBody(error: AthanorError): { readonly error: ErrorFacts } {
  return { error: errorFacts(error) };
}
