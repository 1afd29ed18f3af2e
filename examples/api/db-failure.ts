import { sqlState } from '../../src/core/errors.ts';

/** Where a database call failed: before a statement was sent, or after. */
export type FailurePhase = 'connect' | 'query';

/** What the API answers for a failed database call. */
export type DbFailure =
  /** The database is (for now) unavailable: 503 with Retry-After. `written` says what became of a write. */
  | { readonly kind: 'unavailable'; readonly written: 'no' | 'unknown'; readonly reason: string }
  /** The request itself is wrong (an unknown customer, a rejected value): 422, retrying will not help. */
  | { readonly kind: 'rejected'; readonly reason: string }
  /** A bug or something unforeseen: 500. */
  | { readonly kind: 'internal'; readonly reason: string };

/**
 * SQLSTATEs that mean "not now" rather than "never": what safeshift does to a database while it
 * upgrades it (the app role locked out, its sessions ended, the database renamed or copied) and the
 * usual transient contention.
 */
const UNAVAILABLE_STATES = new Map<string, string>([
  ['57P01', 'session ended by an administrator'],
  ['57P02', 'server crashed'],
  ['57P03', 'server cannot accept connections now'],
  ['57P04', 'database dropped'],
  ['3D000', 'database does not exist (being swapped?)'],
  ['28000', 'app role not allowed to log in now'],
  ['28P01', 'app role password rejected'],
  ['55006', 'database in use by another operation'],
  ['55P03', 'lock not available'],
  ['57014', 'statement cancelled or timed out'],
  ['53300', 'too many connections'],
  ['40001', 'serialization failure'],
  ['40P01', 'deadlock detected'],
  ['25006', 'database is read-only now'],
]);

/** Errors after which the server may or may not have committed what it was sent. */
const SESSION_LOST_STATES = new Set(['57P01', '57P02', '57P04']);

/**
 * Refusals that only mean "not now" while connecting: CONNECT revoked from the app role during a
 * quiesce (42501), or the database closed to new connections while it is copied (55000). Raised by a
 * statement, the same codes are real errors.
 */
const CONNECT_REFUSED_STATES = new Map<string, string>([
  ['42501', 'app role may not connect now'],
  ['55000', 'database not accepting connections now'],
]);

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** `pg`'s own wording for a connection that went away or never came; it sets no code on these. */
const DRIVER_LOST = /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended/i;

const REJECTED_STATES = new Map<string, string>([
  ['23503', 'no such customer'],
  ['23514', 'amount rejected by a check constraint'],
  ['23502', 'a required value is missing'],
  ['22003', 'a number is out of range'],
]);

/**
 * Sorts a database error into what the API should answer. The rule that matters: anything that
 * might be a passing outage is `unavailable` (503, retry), never `internal` (500); and a write whose
 * statement was already sent when the connection went is `written: 'unknown'`, so it is not
 * acknowledged even though it may have committed.
 *
 * @example
 * ```ts
 * classifyDbFailure(Object.assign(new Error('terminating connection'), { code: '57P01' }), 'query')
 * // { kind: 'unavailable', written: 'unknown', reason: 'session ended by an administrator' }
 * ```
 */
export function classifyDbFailure(error: unknown, phase: FailurePhase): DbFailure {
  const state = sqlState(error);
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (state !== undefined) {
    const unavailable =
      UNAVAILABLE_STATES.get(state) ??
      (phase === 'connect' ? CONNECT_REFUSED_STATES.get(state) : undefined) ??
      (state.startsWith('08') ? 'connection failure' : undefined);
    if (unavailable !== undefined) {
      const lost = phase === 'query' && (SESSION_LOST_STATES.has(state) || state.startsWith('08'));
      return { kind: 'unavailable', written: lost ? 'unknown' : 'no', reason: `${unavailable} (SQLSTATE ${state})` };
    }
    const rejected = REJECTED_STATES.get(state);
    if (rejected !== undefined) return { kind: 'rejected', reason: rejected };
    return { kind: 'internal', reason: `SQLSTATE ${state}` };
  }
  if ((typeof code === 'string' && SOCKET_CODES.has(code)) || DRIVER_LOST.test(message)) {
    // No answer from the server: if the statement was out, its fate is unknown to us.
    return { kind: 'unavailable', written: phase === 'query' ? 'unknown' : 'no', reason: typeof code === 'string' ? code : 'connection lost' };
  }
  return { kind: 'internal', reason: 'unexpected error' };
}
