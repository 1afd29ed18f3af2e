import { SafeshiftError, SqlStates, sqlState, type ErrorCode } from './errors.ts';

/**
 * SQLSTATEs that say "the server, not the request, had a bad moment": the same request may succeed
 * when it is sent again. Class 08 (connection exception) is matched as a class, below.
 */
const TRANSIENT_SQLSTATES: ReadonlyMap<string, string> = new Map([
  ['57P01', 'admin_shutdown'],
  ['57P02', 'crash_shutdown'],
  ['57P03', 'cannot_connect_now'],
  [SqlStates.serializationFailure, 'serialization_failure'],
  [SqlStates.deadlockDetected, 'deadlock_detected'],
  [SqlStates.lockNotAvailable, 'lock_not_available'],
  ['53300', 'too_many_connections'],
]);
/** `08xxx`: connection_exception and its subclasses (08000, 08001, 08003, 08006, …). */
const CONNECTION_EXCEPTION_CLASS = '08';

/**
 * Node's socket and resolver errnos that the AWS SDK retries (its NODEJS_TIMEOUT_ERROR_CODES and
 * NODEJS_NETWORK_ERROR_CODES), which are the ones a database restart or failover produces too.
 * ENOTFOUND is among them: a renamed RDS endpoint resolves only after a while, and retries are bounded.
 */
const TRANSIENT_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The AWS SDK's throttling error names (THROTTLING_ERROR_CODES in @smithy's service-error-classification). */
const AWS_THROTTLING_NAMES: ReadonlySet<string> = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
/** The SDK's own transient error names (TRANSIENT_ERROR_CODES): request timeouts. */
const AWS_TRANSIENT_NAMES: ReadonlySet<string> = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
/** HTTP statuses the SDK retries: 429 (throttling) and 500/502/503/504 (TRANSIENT_ERROR_STATUS_CODES); other 5xx it does not. */
const AWS_TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * The SafeshiftError codes that wrap a failure whose cause decides: a connection, a migration, a
 * quiescer or an unexpected error that may well be a dropped connection underneath. Every other code
 * is final by itself (BAD_OPTION, CHECKSUM_MISMATCH, LINT_VIOLATION, VALIDATION_FAILED, LOCKED …):
 * sending the same request again gives the same answer. LOCK_TIMEOUT is final on purpose: the engine
 * already retried the lock with its own backoff, and the Task retrying too would multiply the budget
 * the migration's `lock-timeout` set. A code added later is final until it is listed here.
 */
const CAUSE_DECIDES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CONNECTION_FAILED', 'MIGRATION_FAILED', 'QUIESCE_FAILED', 'INTERNAL']);

/** How far down a chain of causes the classifier looks, and how many errors it reads at most. */
const MAX_DEPTH = 16;
const MAX_NODES = 64;

type Verdict = 'transient' | 'final' | 'unknown';

/**
 * True when sending the same request again, a little later, may well succeed: the database or a
 * service was briefly unavailable, busy or restarting. Walks the whole chain of causes (`cause`, and
 * `errors` of an AggregateError), bounded in depth and safe against cycles, and decides by codes
 * only, never by what a message says:
 *
 * - a SafeshiftError whose own code is final (see CAUSE_DECIDES), or whose `outcome` is
 *   `needs-operator` (a no-transaction migration that half ran must not run again), is final;
 * - a SQLSTATE decides where it is found: 08xxx, 57P01-57P03, 40001, 40P01, 55P03 and 53300 are
 *   transient, any other (28P01 wrong password, 3D000 unknown database …) is final;
 * - node's network errnos, and the AWS SDK's conventions (`$retryable`, throttling names, request
 *   timeouts, HTTP 429/500/502/503/504), are transient; an AbortError is final (it was asked for);
 * - node-postgres's own "the connection is gone" errors, which carry no code (see pgConnectionLost);
 * - of several causes, one final makes the whole final, else one transient makes it transient.
 *
 * @example
 * ```ts
 * try { await step(); }
 * catch (e) { if (isTransient(e)) scheduleRetry(); else throw e; }
 * ```
 */
export function isTransient(error: unknown): boolean {
  return classify(error, 0, new Set()) === 'transient';
}

function classify(error: unknown, depth: number, seen: Set<object>): Verdict {
  if (typeof error !== 'object' || error === null) return 'unknown';
  if (seen.has(error) || depth > MAX_DEPTH || seen.size >= MAX_NODES) return 'unknown';
  seen.add(error);
  if (error instanceof SafeshiftError) {
    if (error.outcome === 'needs-operator' || !CAUSE_DECIDES.has(error.code)) return 'final';
    // Some adapters keep the SQLSTATE or errno in details when they must drop the cause (its text held a password).
    const recorded = ownVerdict({ code: error.details.sqlState ?? error.details.errno });
    if (recorded !== 'unknown') return recorded;
    return causesVerdict(error, depth, seen);
  }
  const own = ownVerdict(error);
  return own !== 'unknown' ? own : causesVerdict(error, depth, seen);
}

/** What this one error says about itself, without looking at its causes. */
function ownVerdict(error: object): Verdict {
  const { code, name, $retryable, $metadata } = error as {
    code?: unknown;
    name?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: unknown; clockSkewCorrected?: unknown };
  };
  if (name === 'AbortError') return 'final';
  // Before the SQLSTATE: five capitals, EPIPE would also pass for one (no SQLSTATE class starts with E).
  if (typeof code === 'string' && TRANSIENT_ERRNOS.has(code)) return 'transient';
  const state = sqlState(error);
  if (state !== undefined) return TRANSIENT_SQLSTATES.has(state) || state.startsWith(CONNECTION_EXCEPTION_CLASS) ? 'transient' : 'final';
  // The SDK's rule: a modelled error with the retryable trait carries `$retryable`, whatever its value.
  if ($retryable !== undefined) return 'transient';
  if (typeof name === 'string' && (AWS_THROTTLING_NAMES.has(name) || AWS_TRANSIENT_NAMES.has(name))) return 'transient';
  const status = $metadata?.httpStatusCode;
  if (typeof status === 'number' && AWS_TRANSIENT_STATUSES.has(status)) return 'transient';
  if ($metadata?.clockSkewCorrected === true) return 'transient';
  if (pgConnectionLost(error)) return 'transient';
  return 'unknown';
}

const isList = (value: unknown): value is readonly unknown[] => Array.isArray(value);

function causesVerdict(error: object, depth: number, seen: Set<object>): Verdict {
  const children: unknown[] = 'cause' in error && error.cause !== undefined ? [error.cause] : [];
  const errors: unknown = error instanceof AggregateError ? error.errors : undefined;
  if (isList(errors)) children.push(...errors);
  let verdict: Verdict = 'unknown';
  for (const child of children) {
    const v = classify(child, depth + 1, seen);
    if (v === 'final') return 'final';
    if (v === 'transient') verdict = 'transient';
  }
  return verdict;
}

/**
 * The errors node-postgres raises itself (pg/lib/client.js) when the connection is gone: a plain
 * `Error` with no code, no SQLSTATE and no cause, so its text is the only signal there is. Matched
 * exactly, and only on a plain Error without a code, so no other error's wording can match:
 * - "Connection terminated unexpectedly": the socket ended without the client ending it (a server
 *   restart, a failover, a proxy dropping the connection);
 * - "Client has encountered a connection error and is not queryable": a query on a client whose
 *   connection already failed;
 * - "timeout expired": `connectionTimeoutMillis` passed before the server answered the connect.
 * ("Connection terminated", without "unexpectedly", is the client ending itself: not a failure.)
 */
function pgConnectionLost(error: object): boolean {
  if (!(error instanceof Error) || Object.getPrototypeOf(error) !== Error.prototype || ('code' in error && error.code !== undefined)) return false;
  return PG_CONNECTION_LOST_MESSAGES.has(error.message);
}
const PG_CONNECTION_LOST_MESSAGES: ReadonlySet<string> = new Set([
  'Connection terminated unexpectedly',
  'Client has encountered a connection error and is not queryable',
  'timeout expired',
]);
