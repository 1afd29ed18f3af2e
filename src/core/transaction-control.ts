import type { TransactionStmtKind } from 'libpg-query';
import { nodeAs } from './lint/nodes.ts';
import type { SqlStatement } from './statements.ts';

/** Why one transaction-control statement is refused, and what to do instead. */
export interface TransactionControl {
  /** The statement as written, on one line and shortened, e.g. `ROLLBACK`. */
  readonly what: string;
  /** What the statement would do to the run: the reason it is refused. */
  readonly message: string;
  readonly fix: string;
}

/** How much of the statement the message quotes. */
const QUOTE_CHARS = 60;

/** What each kind would do inside the transaction safeshift runs a migration in. */
const IN_TRANSACTION: Record<TransactionStmtKind, string> = {
  TRANS_STMT_BEGIN:
    'starts a transaction inside the one safeshift already runs this migration in (Postgres only warns), ' +
    'so the file reads as if it controlled a transaction it does not',
  TRANS_STMT_START:
    'starts a transaction inside the one safeshift already runs this migration in (Postgres only warns), ' +
    'so the file reads as if it controlled a transaction it does not',
  TRANS_STMT_COMMIT:
    'commits the statements before it on their own: a later failure would leave them applied although the migration is reported as rolled back, ' +
    'and the statements after it would run outside any transaction',
  TRANS_STMT_ROLLBACK:
    'discards the statements before it, while the statements after it and the history row still run: ' +
    'the migration would be recorded as applied without its changes',
  TRANS_STMT_SAVEPOINT:
    'cannot catch an error here (the file runs as one query, and its first error ends the whole migration), ' +
    'and a ROLLBACK TO would silently undo part of a migration recorded as applied',
  TRANS_STMT_RELEASE:
    'cannot catch an error here (the file runs as one query, and its first error ends the whole migration), ' +
    'and a ROLLBACK TO would silently undo part of a migration recorded as applied',
  TRANS_STMT_ROLLBACK_TO:
    'silently undoes part of a migration that is then recorded as applied (it cannot catch an error here: ' +
    'the file runs as one query, and its first error ends the whole migration)',
  TRANS_STMT_PREPARE:
    "hands the migration's transaction, with its history row and its locks, " +
    'to a prepared transaction that stays open until someone commits or rolls it back by hand',
  TRANS_STMT_COMMIT_PREPARED: "finishes a prepared transaction that is not this migration's, and Postgres refuses it inside a transaction anyway",
  TRANS_STMT_ROLLBACK_PREPARED: "finishes a prepared transaction that is not this migration's, and Postgres refuses it inside a transaction anyway",
};

const IN_TRANSACTION_FIX =
  'remove it: safeshift already wraps each migration in its own transaction together with its history row, ' +
  'so the migration and its record commit together or not at all. If statements must commit one by one (CREATE INDEX CONCURRENTLY, ' +
  'batched backfills), put them in a migration marked `-- safeshift:no-transaction`, where each statement runs and commits on its own';

/*
 * A no-transaction migration is refused too. Its statements run one by one in autocommit, and after
 * each one safeshift advances the migration's history row to record how far it got. Inside a BEGIN …
 * COMMIT block those progress updates would belong to the user's transaction: a failure in the block
 * rolls them back with it (or leaves the session in an aborted transaction where they cannot be
 * written at all), so the history would no longer say what ran. Statements that must commit together
 * are exactly what a transactional migration is for.
 */
const WITHOUT_TRANSACTION =
  'controls a transaction in a no-transaction migration, where each statement runs and commits on its own and safeshift ' +
  "records the migration's progress after each one: inside a transaction opened here that record would be rolled back or committed with " +
  'the block, so the history would not say what really ran';

const WITHOUT_TRANSACTION_FIX =
  'remove it. Statements that must commit together belong in a transactional migration of their own ' +
  '(without `-- safeshift:no-transaction`), which safeshift runs in one transaction with its history row';

/**
 * Tells whether a statement of a SQL migration controls the transaction (BEGIN, START TRANSACTION,
 * COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION, COMMIT PREPARED,
 * ROLLBACK PREPARED: a `TransactionStmt` of any kind) and, if so, why safeshift refuses it.
 *
 * safeshift owns the transaction. A transactional migration runs in one transaction together with its
 * history row, so a COMMIT in the file would commit half of it and a ROLLBACK would record as applied
 * a migration whose changes are gone. A no-transaction migration is refused too: there each statement
 * runs on its own and safeshift records progress after each one, and a transaction opened by the file
 * would swallow that record. This is not a lint finding that `-- safeshift:allow` can acknowledge:
 * preflight refuses such a file (TRANSACTION_CONTROL) whatever its directives say. A COMMIT inside a
 * procedure or DO block is not a top-level statement and is not matched; Postgres itself refuses it
 * inside a transaction block, and allows it in a no-transaction migration, where it is legitimate.
 *
 * @example
 * ```ts
 * const { statements } = await parseSql('insert into a values (1);\nrollback;', 'V2__a.sql');
 * transactionControl(statements[1], true)?.what; // 'rollback'
 * ```
 */
export function transactionControl(statement: SqlStatement, transactional: boolean): TransactionControl | undefined {
  const stmt = nodeAs(statement.node, 'TransactionStmt');
  if (!stmt) return undefined;
  const flat = statement.sql.replace(/\s+/g, ' ').trim();
  const what = flat.length <= QUOTE_CHARS ? flat : `${flat.slice(0, QUOTE_CHARS - 1)}…`;
  const consequence = transactional ? IN_TRANSACTION[stmt.kind ?? 'TRANS_STMT_BEGIN'] : WITHOUT_TRANSACTION;
  return {
    what,
    message: `\`${what}\` ${consequence}; a migration cannot control its own transaction`,
    fix: transactional ? IN_TRANSACTION_FIX : WITHOUT_TRANSACTION_FIX,
  };
}
