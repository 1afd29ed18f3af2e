/**
 * The stable error codes safeshift reports. Scripts and pipelines match on these, never on messages.
 */
export type ErrorCode =
  | 'CHECKSUM_MISMATCH'
  | 'MISSING_MIGRATION'
  | 'DUPLICATE_VERSION'
  | 'BAD_MIGRATION_NAME'
  | 'OUT_OF_ORDER'
  | 'VALIDATION_FAILED'
  | 'SYNTAX_ERROR'
  | 'TRANSACTION_CONTROL'
  | 'TARGET_REFUSED'
  | 'NOTHING_QUIESCED'
  | 'QUIESCE_LOST'
  | 'WRITE_FENCE'
  | 'STILL_QUIESCED'
  | 'ALREADY_QUIESCED'
  | 'RUN_INTERRUPTED'
  | 'RUN_ALIVE'
  | 'STOPPED'
  | 'DATABASE_CLOSED'
  | 'LINT_VIOLATION'
  | 'LOCKED'
  | 'LOCK_TIMEOUT'
  | 'MIGRATION_FAILED'
  | 'REPAIR_NEEDED'
  | 'VERIFY_FAILED'
  | 'TARGET_NOT_FOUND'
  | 'TARGET_BEHIND'
  | 'SNAPSHOT_NOT_FOUND'
  | 'SNAPSHOT_FOREIGN'
  | 'INCOMPATIBLE'
  | 'CONNECTION_FAILED'
  | 'BAD_OPTION'
  | 'BAD_DIRECTIVE'
  | 'MIGRATIONS_DIR_NOT_FOUND'
  | 'ALREADY_BASELINED'
  | 'FLYWAY_HISTORY_NOT_FOUND'
  | 'EMBEDDED_POSTGRES_FAILED'
  | 'DATABASE_NOT_FOUND'
  | 'NOT_SAFESHIFT_RESOURCE'
  | 'RUN_NOT_FOUND'
  | 'QUIESCE_FAILED'
  | 'INVALID_STATE'
  | 'POLL_TIMEOUT'
  | 'SNAPSHOT_QUOTA_EXCEEDED'
  | 'KMS_KEY_NOT_ACCESSIBLE'
  | 'INSUFFICIENT_CAPACITY'
  | 'ALREADY_EXISTS'
  | 'SWAP_IN_PROGRESS'
  | 'INTERNAL';

/**
 * How a failure leaves things, which decides the CLI exit code (DESIGN.md):
 * `refused` (2) nothing changed; `rolled-back` (1) the failed part was undone;
 * `needs-operator` (3) a person must look.
 */
export type Outcome = 'refused' | 'rolled-back' | 'needs-operator';

/** Where in a migration a problem is. Lines and columns are 1-based. */
export interface SourceLocation {
  readonly file?: string;
  readonly version?: string;
  readonly statementIndex?: number;
  readonly line?: number;
  readonly column?: number;
}

/** One problem in a report that gathers many (validate, lint, preflight). */
export interface Problem extends SourceLocation {
  readonly code: ErrorCode;
  readonly message: string;
}

export interface SafeshiftErrorOptions extends SourceLocation {
  readonly cause?: unknown;
  readonly outcome?: Outcome;
  /** Further facts a person or a script may need (the SQLSTATE, the failing SQL, a list of problems). */
  readonly details?: Record<string, unknown>;
}

/**
 * The base of every error safeshift raises on purpose. It carries a stable `code`,
 * a message a person can act on and, where one applies, the file/statement/line.
 *
 * @example
 * ```ts
 * try { await migrate(opts); }
 * catch (e) { if (e instanceof SafeshiftError && e.code === 'LOCKED') retryLater(); else throw e; }
 * ```
 */
export class SafeshiftError extends Error {
  readonly code: ErrorCode;
  readonly outcome: Outcome;
  readonly location: SourceLocation;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: SafeshiftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SafeshiftError';
    this.code = code;
    this.outcome = options.outcome ?? 'refused';
    const { cause: _c, outcome: _o, details, ...location } = options;
    this.location = location;
    this.details = details ?? {};
  }

  /** A plain object for `--json` output and the ledger. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, outcome: this.outcome, message: this.message, ...this.location, ...this.details };
  }
}

/** Preflight found one or more problems; nothing was changed. Every problem is listed, not just the first. */
export class ValidationError extends SafeshiftError {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[], what = 'validation') {
    const first = problems[0];
    // One kind of problem keeps its own code; a mix is reported as VALIDATION_FAILED with each listed.
    const code: ErrorCode = first && problems.every((p) => p.code === first.code) ? first.code : 'VALIDATION_FAILED';
    const summary = problems.map((p) => `  ${p.code}: ${p.message}`).join('\n');
    super(code, `${what} failed with ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was changed:\n${summary}`, {
      details: { problems },
    });
    this.name = 'ValidationError';
    this.problems = problems;
  }
}

/** Another run holds the lock on this database. */
export class LockedError extends SafeshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('LOCKED', message, { details });
    this.name = 'LockedError';
  }
}

/** The database could not be reached with the given URL (`DATABASE_CLOSED`: it exists but takes no connections). */
export class ConnectionError extends SafeshiftError {
  constructor(message: string, cause?: unknown, code: 'CONNECTION_FAILED' | 'DATABASE_CLOSED' = 'CONNECTION_FAILED') {
    super(code, message, { cause });
    this.name = 'ConnectionError';
  }
}

/** A migration failed while it ran; the message names file, statement, line, SQLSTATE. */
export class MigrationError extends SafeshiftError {
  constructor(code: ErrorCode, message: string, options: SafeshiftErrorOptions) {
    super(code, message, options);
    this.name = 'MigrationError';
  }
}

/** A command-line option or library argument is wrong. */
export class OptionError extends SafeshiftError {
  constructor(message: string) {
    super('BAD_OPTION', message);
    this.name = 'OptionError';
  }
}

/** True for errors the driver raises with a SQLSTATE (`pg`'s DatabaseError). */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** SQLSTATE codes given names, so code never compares raw strings. */
export const SqlStates = {
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  deadlockDetected: '40P01',
  serializationFailure: '40001',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  duplicateDatabase: '42P04',
  duplicateObject: '42710',
  objectInUse: '55006',
  objectNotInPrerequisiteState: '55000',
  uniqueViolation: '23505',
  undefinedTable: '42P01',
  activeSqlTransaction: '25001',
  configurationLimitExceeded: '53400',
} as const;
