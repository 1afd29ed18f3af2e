import type { SqlClient } from '../ports.ts';
import type { Phase } from './directives.ts';
import { escapeIdentifier, escapeLiteral } from './identifiers.ts';

/** How a history row came to be. */
export type HistoryType = 'SQL' | 'TS' | 'JS' | 'SQL_REPEATABLE' | 'BASELINE';

/** One row of `safeshift_schema_history`. */
export interface HistoryRow {
  readonly installedRank: number;
  /** Null for repeatable migrations. */
  readonly version: string | null;
  readonly description: string;
  readonly type: HistoryType;
  readonly script: string;
  readonly checksum: string | null;
  readonly installedBy: string;
  readonly installedOn: Date;
  readonly executionMs: number;
  readonly success: boolean;
  readonly runId: string | null;
  readonly phase: Phase;
  /** For a no-transaction migration: how many of its statements are known to have run. */
  readonly statementsApplied: number | null;
  readonly statementsTotal: number | null;
}

/** A row to record; the database fills rank, installed_by and installed_on. */
export type NewHistoryRow = Omit<HistoryRow, 'installedRank' | 'installedBy' | 'installedOn'>;

/** Where the history lives. Both names are quoted by Postgres rules wherever they reach SQL. */
export interface HistoryLocation {
  readonly schema: string;
  readonly table: string;
}

export const DEFAULT_HISTORY: HistoryLocation = { schema: 'public', table: 'safeshift_schema_history' };

/**
 * Reads and writes the migration history table.
 *
 * @example
 * ```ts
 * const history = new HistoryTable(client, DEFAULT_HISTORY);
 * await history.ensure();
 * const rows = await history.read();
 * ```
 */
export class HistoryTable {
  readonly qualifiedName: string;

  constructor(
    private readonly client: SqlClient,
    readonly location: HistoryLocation = DEFAULT_HISTORY,
  ) {
    this.qualifiedName = `${escapeIdentifier(location.schema)}.${escapeIdentifier(location.table)}`;
  }

  /** True when the table exists (without creating it: validate and info must change nothing). */
  async exists(): Promise<boolean> {
    const { rows } = await this.client.query<{ found: boolean }>(
      `select exists (select 1 from pg_catalog.pg_tables where schemaname = $1 and tablename = $2) as found`,
      [this.location.schema, this.location.table],
    );
    return rows[0]?.found === true;
  }

  /** Creates the schema and table when missing. Call only while holding the migration lock. */
  async ensure(): Promise<void> {
    if (await this.exists()) return;
    await this.client.query(`create schema if not exists ${escapeIdentifier(this.location.schema)}`);
    await this.client.query(`create table if not exists ${this.qualifiedName} (
      installed_rank serial primary key,
      version text,
      description text not null,
      type text not null,
      script text not null,
      checksum text,
      installed_by text not null default current_user,
      installed_on timestamptz not null default now(),
      execution_ms integer not null default 0,
      success boolean not null,
      run_id text,
      phase text not null default 'expand' check (phase in ('expand', 'contract')),
      statements_applied integer,
      statements_total integer
    )`);
  }

  /** Every row in the order they were installed; empty when the table does not exist. */
  async read(): Promise<HistoryRow[]> {
    if (!(await this.exists())) return [];
    const { rows } = await this.client.query(
      `select installed_rank, version, description, type, script, checksum, installed_by, installed_on,
              execution_ms, success, run_id, phase, statements_applied, statements_total
         from ${this.qualifiedName} order by installed_rank`,
    );
    return rows.map(toRow);
  }

  /** Records one row and returns its rank. */
  async insert(row: NewHistoryRow): Promise<number> {
    const { rows } = await this.client.query<{ installed_rank: number }>(
      `insert into ${this.qualifiedName}
         (version, description, type, script, checksum, execution_ms, success, run_id, phase, statements_applied, statements_total)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning installed_rank`,
      [
        row.version,
        row.description,
        row.type,
        row.script,
        row.checksum,
        row.executionMs,
        row.success,
        row.runId,
        row.phase,
        row.statementsApplied,
        row.statementsTotal,
      ],
    );
    return Number(rows[0]?.installed_rank);
  }

  /**
   * The INSERT of a row as SQL text with its values quoted, so it can travel in the same round trip
   * as the migration it records. `execution_ms` is measured by the server from the transaction's start.
   */
  insertSql(row: NewHistoryRow): string {
    const lit = (v: string | number | boolean | null): string => (v === null ? 'null' : typeof v === 'string' ? escapeLiteral(v) : String(v));
    return `insert into ${this.qualifiedName}
         (version, description, type, script, checksum, execution_ms, success, run_id, phase, statements_applied, statements_total)
       values (${[row.version, row.description, row.type, row.script, row.checksum].map(lit).join(', ')},
         (extract(epoch from clock_timestamp() - now()) * 1000)::int,
         ${[row.success, row.runId, row.phase, row.statementsApplied, row.statementsTotal].map(lit).join(', ')})`;
  }

  /** Records progress of a no-transaction migration (write-ahead of nothing: it follows each statement). */
  async markProgress(rank: number, statementsApplied: number, success: boolean, executionMs: number): Promise<void> {
    await this.client.query(`update ${this.qualifiedName} set statements_applied = $2, success = $3, execution_ms = $4 where installed_rank = $1`, [
      rank,
      statementsApplied,
      success,
      executionMs,
    ]);
  }

  /** Removes failed rows (repair). Returns what was removed. */
  async deleteFailed(): Promise<HistoryRow[]> {
    const { rows } = await this.client.query(`delete from ${this.qualifiedName} where not success returning *`);
    return rows.map(toRow);
  }

  /** Realigns a recorded checksum and description with the file on disk (repair). */
  async realign(rank: number, checksum: string, description: string): Promise<void> {
    await this.client.query(`update ${this.qualifiedName} set checksum = $2, description = $3 where installed_rank = $1`, [rank, checksum, description]);
  }
}

const HISTORY_TYPES: ReadonlySet<unknown> = new Set<HistoryType>(['SQL', 'TS', 'JS', 'SQL_REPEATABLE', 'BASELINE']);
const isHistoryType = (value: unknown): value is HistoryType => HISTORY_TYPES.has(value);

/** A row as pg returns it (text, integer, boolean and timestamptz columns), checked into a HistoryRow. */
function toRow(r: Record<string, unknown>): HistoryRow {
  const script = String(r.script);
  if (!isHistoryType(r.type)) throw new Error(`history row ${String(r.installed_rank)} (${script}) has type ${String(r.type)}, which safeshift does not write`);
  return {
    installedRank: Number(r.installed_rank),
    version: textOrNull(r.version),
    description: String(r.description),
    type: r.type,
    script,
    checksum: textOrNull(r.checksum),
    installedBy: String(r.installed_by),
    installedOn: r.installed_on instanceof Date ? r.installed_on : new Date(String(r.installed_on)),
    executionMs: Number(r.execution_ms),
    success: r.success === true,
    runId: textOrNull(r.run_id),
    // The column is `not null check (phase in ('expand', 'contract'))`.
    phase: r.phase === 'contract' ? 'contract' : 'expand',
    statementsApplied: numberOrNull(r.statements_applied),
    statementsTotal: numberOrNull(r.statements_total),
  };
}

function textOrNull(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new TypeError(`a text column of the history holds a ${typeof value}`);
  return value;
}
const numberOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
