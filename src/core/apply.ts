import { pathToFileURL } from 'node:url';
import type { OwnWriteMarks, SqlClient, SqlErrorProgress } from '../ports.ts';
import type { MigrationFile } from './discover.ts';
import { MigrationError, SqlStates, sqlState } from './errors.ts';
import { indexValidity, skippedInvalidIndex, undoHalfBuilt } from './half-built-indexes.ts';
import type { HistoryTable, HistoryType } from './history.ts';
import type { Logger } from './logger.ts';
import type { ParsedSql, SqlStatement } from './statements.ts';

/** What a `.ts`/`.js` migration's `up(ctx)` receives. */
export interface MigrationContext {
  /** The client, inside the migration's transaction (unless it is a no-transaction migration). */
  readonly client: SqlClient;
  readonly log: Logger;
}

/** Settings for applying migrations. */
export interface ApplySettings {
  readonly client: SqlClient;
  readonly history: HistoryTable;
  readonly runId: string;
  readonly log: Logger;
  /** lock_timeout for a migration without its own directive, in ms (0 = none). */
  readonly lockTimeoutMs: number;
  /** How many times a lock-not-available failure is retried before the migration fails. */
  readonly lockRetries: number;
  /** First backoff delay after a lock timeout, in ms; it doubles each retry. */
  readonly lockRetryDelayMs: number;
  /** How the run marks its writes, so the write fence tells them from anyone else's (ports.ts WriteFence). None outside a workflow. */
  readonly ownWrites?: OwnWriteMarks;
}

/** The record of one applied migration. */
export interface AppliedResult {
  readonly script: string;
  readonly version: string | null;
  readonly description: string;
  readonly phase: string;
  readonly executionMs: number;
  /** Lock-not-available retries it needed. */
  readonly lockRetries: number;
}

/**
 * Applies one migration and records it in the history. A transactional migration and its history row
 * commit together or not at all; a no-transaction migration records its progress statement by statement.
 */
export async function applyMigration(file: MigrationFile, parsed: ParsedSql | undefined, s: ApplySettings): Promise<AppliedResult> {
  const started = performance.now();
  const lockTimeoutMs = file.directives.lockTimeoutMs ?? s.lockTimeoutMs;
  let retries = 0;
  if (!file.directives.transaction && parsed) {
    retries = await applyWithoutTransaction(file, parsed, lockTimeoutMs, s);
  } else {
    for (;;) {
      try {
        await applyInTransaction(file, parsed, lockTimeoutMs, s, started);
        break;
      } catch (error) {
        const cause = error instanceof StatementFailure ? error.original : error;
        if (sqlState(cause) === SqlStates.lockNotAvailable && retries < s.lockRetries) {
          retries++;
          await backoff(s, retries, file);
          continue;
        }
        throw explain(error, file, parsed, retries);
      }
    }
  }
  return {
    script: file.script,
    version: file.version?.text ?? null,
    description: file.description,
    phase: file.directives.phase,
    executionMs: Math.round(performance.now() - started),
    lockRetries: retries,
  };
}

async function applyInTransaction(file: MigrationFile, parsed: ParsedSql | undefined, lockTimeoutMs: number, s: ApplySettings, started: number): Promise<void> {
  const { client } = s;
  const own = s.ownWrites ? ` ${s.ownWrites.inTransaction};` : '';
  const begin = `begin; set local lock_timeout = ${Math.max(0, Math.floor(lockTimeoutMs))};${own}\n`;
  if (parsed) {
    // One round trip: the file, its history row and the commit travel together, so the engine costs
    // what running the file by hand costs. A failure is mapped back to its statement afterwards.
    // Preflight refused any transaction control in the file, so this is one transaction: a failure
    // anywhere in it leaves nothing of the migration behind.
    const query = `${begin}${file.text}\n;\n${s.history.insertSql(historyRow(file, s.runId, 0, true, null, null))};\ncommit`;
    try {
      await client.query(query);
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw attribute(error, file, parsed, begin.length, own ? PREFIX_STATEMENTS + 1 : PREFIX_STATEMENTS);
    }
    return;
  }
  await client.query(begin);
  try {
    await runScriptModule(file, { client, log: s.log });
    await s.history.insert(historyRow(file, s.runId, Math.round(performance.now() - started), true, null, null));
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/** The statements the one-round-trip query runs before the file's own: `begin` and `set local lock_timeout` (then the run's mark, if any). */
const PREFIX_STATEMENTS = 2;

/**
 * Finds where a failed one-round-trip migration failed, from what the server said and never by
 * running a statement again (a replay would repeat the side effects a rolled-back transaction does not
 * undo, such as sequence values, and cost the migration's time twice). Postgres gives a position for
 * errors it can place (syntax, unknown columns). For the rest, the client reports how many statements
 * the server completed before the error (SqlErrorProgress): the two of the prefix, then the file's in
 * order, then the history row and the commit. Without either, the failure is reported unlocated.
 */
function attribute(error: unknown, file: MigrationFile, parsed: ParsedSql, prefixLength: number, prefixStatements: number): StatementFailure {
  const statements = parsed.statements;
  const position = Number((error as PgErrorFields).position);
  if (Number.isFinite(position) && position > 0) {
    const offset = position - 1 - prefixLength;
    if (offset >= 0 && offset < file.text.length) {
      const st = [...statements].reverse().find((x) => x.offset <= offset) ?? statements[0];
      if (st) return new StatementFailure(withPosition(error, offset - st.offset + 1), st);
    }
  }
  const done = completedStatements(error);
  const total = statements.length;
  if (done === undefined) {
    return new StatementFailure(
      error,
      undefined,
      ` (safeshift cannot tell in which of its ${total} statements: Postgres gave no position ` +
        'and the database client did not say how many statements completed)',
    );
  }
  if (done < prefixStatements) return new StatementFailure(error, undefined, ' before any of its statements ran, while its transaction was opened');
  const index = done - prefixStatements;
  const st = statements[index];
  if (st) return new StatementFailure(error, st);
  const all = `after ${total === 1 ? 'its one statement' : `all ${total} of its statements`} ran`;
  if (index === total) return new StatementFailure(error, undefined, ` while recording it in the history table, ${all}`);
  if (index === total + 1) {
    return new StatementFailure(error, undefined, ` when its transaction committed (deferred constraints and triggers run then), ${all}`);
  }
  // More completions than the query has statements: the server split the file otherwise than the parser.
  return new StatementFailure(error, undefined, ` (safeshift cannot tell in which of its ${total} statements: the server completed ${index} before the error)`);
}

/** How many statements the server completed before the error, when the client says (ports.ts SqlErrorProgress). */
function completedStatements(error: unknown): number | undefined {
  const n = (error as SqlErrorProgress | null)?.completedStatements;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** The same driver error with its position made relative to one statement. */
function withPosition(error: unknown, position: number): unknown {
  return Object.assign(Object.create(Object.getPrototypeOf(error) as object) as object, error, { position: String(position) });
}

/**
 * Runs a no-transaction migration one statement at a time. The history row is written first and
 * advanced after each statement, so a failure or a crash leaves a record of exactly what ran.
 */
async function applyWithoutTransaction(file: MigrationFile, parsed: ParsedSql, lockTimeoutMs: number, s: ApplySettings): Promise<number> {
  const { client } = s;
  const started = performance.now();
  const total = parsed.statements.length;
  const rank = await asOwnWrite(s, () => s.history.insert(historyRow(file, s.runId, 0, false, 0, total)));
  await client.query(`set lock_timeout = ${Math.max(0, Math.floor(lockTimeoutMs))}`);
  let retries = 0;
  try {
    for (const st of parsed.statements) {
      for (;;) {
        // A statement outside a transaction is not undone by Postgres when it fails: what it left of indexes is checked after.
        const indexes = await indexValidity(client);
        try {
          await runOnItsOwn(s, st);
          const skipped = await skippedInvalidIndex(client, st);
          if (skipped) throw new SkippedInvalidIndex(skipped);
          break;
        } catch (error) {
          const half = error instanceof SkippedInvalidIndex ? { dropped: [], left: [] } : await undoHalfBuilt(client, indexes, st).catch(() => undefined);
          if (half?.dropped.length) s.log.warn(`${file.script}: dropped the index(es) ${half.dropped.join(', ')} the failed statement left`);
          // A procedure or DO block may have committed part of its work before it failed: that is not undone here.
          const clean = half?.left.length === 0 && !commitsInside(st);
          if (clean && sqlState(error) === SqlStates.lockNotAvailable && retries < s.lockRetries) {
            retries++;
            await backoff(s, retries, file);
            continue;
          }
          if (clean && st.index === 0) {
            // Nothing ran (or what ran was undone), so the history can forget the attempt and the database is as before.
            await asOwnWrite(s, () => client.query(`delete from ${s.history.qualifiedName} where installed_rank = $1`, [rank]));
            throw explain(new StatementFailure(error, st), file, parsed, retries);
          }
          const leftInvalid = half?.left.length
            ? `\nIt left ${half.left.join(', ')} invalid, which Postgres does not undo: drop or rebuild ${half.left.length === 1 ? 'it' : 'them'} by hand.`
            : '';
          const failure = explain(new StatementFailure(error, st), file, parsed, retries, {
            outcome: 'needs-operator',
            suffix:
              `\n${st.index} of ${total} statements ran before it failed and stay applied (this migration has no transaction).${leftInvalid} ` +
              'Finish or undo them by hand, then run `safeshift repair`; further runs are refused until then.',
          });
          throw failure;
        }
      }
      await asOwnWrite(s, () => s.history.markProgress(rank, st.index + 1, false, Math.round(performance.now() - started)));
    }
    await asOwnWrite(s, () => s.history.markProgress(rank, total, true, Math.round(performance.now() - started)));
  } finally {
    await client.query('reset lock_timeout').catch(() => undefined);
  }
  return retries;
}

/**
 * Runs a write of a no-transaction migration in a transaction of its own that carries the run's mark
 * (ApplySettings.ownWrites), so the write fence knows it as the run's; as it is without marks.
 */
async function asOwnWrite<T>(s: ApplySettings, write: () => Promise<T>): Promise<T> {
  if (!s.ownWrites) return write();
  await s.client.query(`begin; ${s.ownWrites.inTransaction}`);
  try {
    const result = await write();
    await s.client.query('commit');
    return result;
  } catch (error) {
    await s.client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/** Statements whose body may commit by itself (a procedure, a DO block): inside a transaction of ours they would fail half-way. */
const COMMITS_INSIDE = new Set(['CallStmt', 'DoStmt']);
const commitsInside = (st: SqlStatement): boolean => Object.keys(st.node).some((kind) => COMMITS_INSIDE.has(kind));

/**
 * One statement of a no-transaction migration, committed on its own. It runs as the run's own write
 * ({@link asOwnWrite}) where it can. A statement Postgres refuses in a transaction block (CREATE
 * INDEX CONCURRENTLY, VACUUM, ...) is refused before it does anything (25001); it then runs between
 * the run's before and after marks, and so do procedures and DO blocks, which may commit by themselves.
 */
async function runOnItsOwn(s: ApplySettings, st: SqlStatement): Promise<void> {
  const marks = s.ownWrites;
  if (!marks) {
    await s.client.query(st.sql);
    return;
  }
  if (!commitsInside(st)) {
    try {
      await asOwnWrite(s, () => s.client.query(st.sql));
      return;
    } catch (error) {
      if (sqlState(error) !== SqlStates.activeSqlTransaction) throw error;
    }
  }
  await s.client.query(marks.before);
  try {
    await s.client.query(st.sql);
  } finally {
    await s.client.query(marks.after).catch(() => undefined);
  }
}

async function runScriptModule(file: MigrationFile, ctx: MigrationContext): Promise<void> {
  const mod = (await import(pathToFileURL(file.absolutePath).href)) as { up?: unknown; default?: { up?: unknown } };
  const up = typeof mod.up === 'function' ? mod.up : mod.default?.up;
  if (typeof up !== 'function') {
    throw new MigrationError('MIGRATION_FAILED', `${file.script} does not export a function up(ctx); nothing was run`, {
      file: file.script,
      outcome: 'rolled-back',
    });
  }
  await (up as (c: MigrationContext) => Promise<void>)(ctx);
}

function historyRow(file: MigrationFile, runId: string, executionMs: number, success: boolean, applied: number | null, total: number | null) {
  const type: HistoryType = file.kind === 'repeatable' ? 'SQL_REPEATABLE' : file.language === 'sql' ? 'SQL' : file.language === 'ts' ? 'TS' : 'JS';
  return {
    version: file.version?.text ?? null,
    description: file.description,
    type,
    script: file.script,
    checksum: file.checksum,
    executionMs,
    success,
    runId,
    phase: file.directives.phase,
    statementsApplied: applied,
    statementsTotal: total,
  };
}

async function backoff(s: ApplySettings, attempt: number, file: MigrationFile): Promise<void> {
  const delay = s.lockRetryDelayMs * 2 ** (attempt - 1);
  const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
  s.log.warn(`${file.script}: a table it needs is locked by another session (lock_timeout); retry ${attempt}/${s.lockRetries} in ${jittered} ms`);
  await new Promise((r) => setTimeout(r, jittered));
}

/**
 * A migration's failure, before it is explained with file and line: in a statement, or, without one,
 * `stage` says what failed instead (the history row, the commit) or that it is not known.
 */
/** A CREATE INDEX CONCURRENTLY IF NOT EXISTS that succeeded by skipping an index an earlier build left invalid. */
class SkippedInvalidIndex extends Error {
  constructor(index: string) {
    super(
      `index ${index} already exists but is invalid (a CREATE INDEX CONCURRENTLY that failed earlier left it), so IF NOT EXISTS ` +
        `skipped the build and the index is not usable; drop it (DROP INDEX CONCURRENTLY ${index}) and run again`,
    );
  }
}

class StatementFailure extends Error {
  constructor(
    readonly original: unknown,
    readonly statement: SqlStatement | undefined,
    readonly stage = '',
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

interface PgErrorFields {
  position?: string;
  detail?: string;
  hint?: string;
  where?: string;
  message?: string;
  stack?: string;
}

/** Turns a driver error into a MigrationError naming the file, statement, line, column and SQLSTATE. */
function explain(
  error: unknown,
  file: MigrationFile,
  parsed: ParsedSql | undefined,
  retries: number,
  extra: { outcome?: 'needs-operator'; suffix?: string } = {},
): MigrationError {
  if (error instanceof MigrationError) return error;
  const statement = error instanceof StatementFailure ? error.statement : undefined;
  const stage = error instanceof StatementFailure ? error.stage : '';
  const original = (error instanceof StatementFailure ? error.original : error) as PgErrorFields;
  const state = sqlState(original);
  const lockTimedOut = state === SqlStates.lockNotAvailable;
  let line: number | undefined;
  let column: number | undefined;
  let snippet = '';
  if (statement && parsed) {
    const pos = Number(original.position);
    const offset = Number.isFinite(pos) && pos > 0 ? statement.offset + pos - 1 : statement.offset;
    ({ line, column } = parsed.source.position(offset));
    snippet = parsed.source.snippet(line, column);
  } else if (!parsed) {
    ({ line, column } = stackPosition(original.stack, file.absolutePath));
  }
  const where = `${file.script}${line ? `:${line}:${column}` : ''}`;
  const stmt = statement ? ` in statement ${statement.index + 1} of ${parsed?.statements.length}` : stage;
  const lines = [
    lockTimedOut
      ? `${where}: ${file.script} could not get a lock${stmt} within its lock_timeout after ${retries + 1} attempts (SQLSTATE ${state}): ` +
        `another session holds a conflicting lock on a table it changes. ` +
        `${extra.suffix ? 'Retry' : 'Nothing of this migration was applied; retry'} when the table is less busy or raise \`-- safeshift:lock-timeout\`.`
      : `${where}: ${file.script} failed${stmt}${state ? ` (SQLSTATE ${state})` : ''}: ${original.message ?? String(error)}`,
  ];
  if (original.detail) lines.push(`DETAIL: ${original.detail}`);
  if (original.hint) lines.push(`HINT: ${original.hint}`);
  if (snippet) lines.push(snippet);
  if (extra.suffix) lines.push(extra.suffix.trim());
  else if (!lockTimedOut) lines.push('The migration was rolled back; the database is as it was before it started.');
  return new MigrationError(lockTimedOut ? 'LOCK_TIMEOUT' : 'MIGRATION_FAILED', lines.join('\n'), {
    cause: original,
    outcome: extra.outcome ?? 'rolled-back',
    file: file.script,
    ...(file.version ? { version: file.version.text } : {}),
    ...(statement ? { statementIndex: statement.index } : {}),
    ...(line ? { line, column } : {}),
    details: { ...(state ? { sqlState: state } : {}), ...(statement ? { sql: statement.sql } : {}) },
  });
}

/** The line and column of a script migration's own frame in a stack trace. */
function stackPosition(stack: string | undefined, absolutePath: string): { line?: number; column?: number } {
  if (!stack) return {};
  for (const frame of stack.split('\n')) {
    const idx = frame.indexOf(absolutePath);
    if (idx < 0) continue;
    const m = /:(\d+):(\d+)\)?\s*$/.exec(frame.slice(idx + absolutePath.length));
    if (m) return { line: Number(m[1]), column: Number(m[2]) };
  }
  return {};
}
