import { SafeshiftError, sqlState } from '../core/errors.ts';
import { isTransient } from '../core/transient.ts';
import type { RunError } from '../ports.ts';

/** The error name ASL Retry clauses match for a failure worth retrying. */
export const TRANSIENT = 'Transient';

/**
 * Turns what a step threw into the error a state machine sees: its `name` is the stable code (what
 * Retry and Catch match), or `Transient` when {@link isTransient} says a retry may succeed, and its
 * `message` a JSON document with the code, message and location, which the finishing step records in
 * the ledger (so a Transient failure that runs out of retries is still recorded under its own code).
 *
 * @example
 * ```ts
 * try { return await runStep(step, input, ctx); } catch (error) { throw toStepError(error); }
 * ```
 */
export function toStepError(error: unknown): Error {
  const doc = describeError(error);
  const out = new Error(JSON.stringify(doc));
  out.name = doc.transient ? TRANSIENT : doc.code;
  return out;
}

interface ErrorDocument extends RunError {
  readonly outcome?: string;
  readonly transient?: boolean;
}

function describeError(error: unknown): ErrorDocument {
  // Transient wherever it is said: a SafeshiftError wrapping a dropped connection is retried too.
  const transient = isTransient(error) ? { transient: true } : {};
  if (error instanceof SafeshiftError) {
    return {
      code: error.code,
      message: error.message,
      outcome: error.outcome,
      ...transient,
      ...(error.location.file ? { migration: error.location.file } : {}),
    };
  }
  const state = sqlState(error);
  const said = (error as { message?: unknown } | null)?.message;
  const message = typeof said === 'string' ? said : String(error);
  return { code: 'INTERNAL', message: state ? `${message} (SQLSTATE ${state})` : message, ...transient };
}

/**
 * Reads back what a Catch clause caught (`{ Error, Cause }`), from a local run (Cause is the JSON
 * message) or from Lambda (Cause is `{"errorType","errorMessage",…}` around it).
 */
export function caughtError(caught: { Error?: string; Cause?: string } | undefined): RunError {
  if (!caught) return { code: 'INTERNAL', message: 'the run failed without an error record' };
  let cause: unknown = caught.Cause;
  for (let i = 0; i < 2 && typeof cause === 'string'; i++) {
    try {
      cause = JSON.parse(cause);
    } catch {
      break;
    }
    const lambda = cause as { errorMessage?: unknown } | null;
    if (lambda && typeof lambda.errorMessage === 'string') cause = lambda.errorMessage;
  }
  const doc = cause as Partial<RunError> | undefined;
  if (doc && typeof doc === 'object' && typeof doc.code === 'string' && typeof doc.message === 'string') {
    return { code: doc.code, message: doc.message, ...(doc.migration ? { migration: doc.migration } : {}) };
  }
  return { code: caught.Error ?? 'INTERNAL', message: typeof caught.Cause === 'string' ? caught.Cause : String(caught.Error) };
}
