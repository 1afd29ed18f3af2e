import type { ParsedSql } from '../statements.ts';
import type { LintSeverity } from './rule.ts';

export type { LintSeverity };

/**
 * One problem the linter found in a migration.
 *
 * @example
 * ```ts
 * const finding: LintFinding = {
 *   rule: 'drop-column', severity: 'error', file: 'V7__drop_note.sql', version: '7', line: 3, column: 3,
 *   statementIndex: 0, message: 'dropping column orders.note breaks …', fix: 'move it to a contract migration …',
 *   sql: 'ALTER TABLE orders DROP COLUMN note',
 * };
 * ```
 */
export interface LintFinding {
  /** The rule's kebab-case name, as `-- safeshift:allow` takes it. */
  readonly rule: string;
  readonly severity: LintSeverity;
  /** The migration's script path (relative to the migrations folder). */
  readonly file: string;
  readonly version?: string;
  /** 1-based line and column of the offending clause (or statement). */
  readonly line: number;
  readonly column: number;
  /** 0-based index of the statement in the file; -1 for a finding about the file's directives. */
  readonly statementIndex: number;
  /** Why it is dangerous. */
  readonly message: string;
  /** What to do instead. */
  readonly fix: string;
  /** The statement, on one line and shortened. */
  readonly sql: string;
  /** Set when a `-- safeshift:allow` acknowledges the finding: it is listed but does not fail the lint. */
  readonly allowed?: { readonly reason: string };
}

/**
 * What {@link lintMigrations} found: every finding, and how many are not acknowledged.
 *
 * @example
 * ```ts
 * const report = await lintMigrations(migrations);
 * if (report.errors > 0) process.exitCode = 2;
 * ```
 */
export interface LintReport {
  readonly findings: readonly LintFinding[];
  /** Unacknowledged errors: the lint fails when this is not 0. */
  readonly errors: number;
  /** Unacknowledged warnings. */
  readonly warnings: number;
}

/**
 * How to lint.
 *
 * @example
 * ```ts
 * await lintMigrations(migrations, { applied: new Set(['V1__init.sql']), defaultLockTimeoutMs: 5000 });
 * ```
 */
export interface LintOptions {
  /** Scripts already applied: they are part of the schema model but not reported. */
  readonly applied?: ReadonlySet<string>;
  /**
   * The run's default lock timeout in ms; 0 = none.
   * @default 5000
   */
  readonly defaultLockTimeoutMs?: number;
  /** Parses the caller already made, by script, so no file is parsed twice. */
  readonly parsed?: ReadonlyMap<string, ParsedSql>;
}
