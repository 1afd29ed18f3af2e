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

  constructor(private readonly client: SqlClient, readonly location: HistoryLocation = DEFAULT_HISTORY) {
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
    const { rows } = await this.client.query<Record<string, unknown>>(
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
      [row.version, row.description, row.type, row.script, row.checksum, row.executionMs, row.success,
        row.runId, row.phase, row.statementsApplied, row.statementsTotal],
    );
    return Number(rows[0]?.installed_rank);
  }

  /**
   * The INSERT of a row as SQL text with its values quoted, so it can travel in the same round trip
   * as the migration it records. `execution_ms` is measured by the server from the transaction's start.
   */
  insertSql(row: NewHistoryRow): string {
    const lit = (v: string | number | boolean | null): string =>
      v === null ? 'null' : typeof v === 'string' ? escapeLiteral(v) : String(v);
    return `insert into ${this.qualifiedName}
         (version, description, type, script, checksum, execution_ms, success, run_id, phase, statements_applied, statements_total)
       values (${[row.version, row.description, row.type, row.script, row.checksum].map(lit).join(', ')},
         (extract(epoch from clock_timestamp() - now()) * 1000)::int,
         ${[row.success, row.runId, row.phase, row.statementsApplied, row.statementsTotal].map(lit).join(', ')})`;
  }

  /** Records progress of a no-transaction migration (write-ahead of nothing: it follows each statement). */
  async markProgress(rank: number, statementsApplied: number, success: boolean, executionMs: number): Promise<void> {
    await this.client.query(
      `update ${this.qualifiedName} set statements_applied = $2, success = $3, execution_ms = $4 where installed_rank = $1`,
      [rank, statementsApplied, success, executionMs],
    );
  }

  /** Removes failed rows (repair). Returns what was removed. */
  async deleteFailed(): Promise<HistoryRow[]> {
    const { rows } = await this.client.query<Record<string, unknown>>(
      `delete from ${this.qualifiedName} where not success returning *`,
    );
    return rows.map(toRow);
  }

  /** Realigns a recorded checksum and description with the file on disk (repair). */
  async realign(rank: number, checksum: string, description: string): Promise<void> {
    await this.client.query(
      `update ${this.qualifiedName} set checksum = $2, description = $3 where installed_rank = $1`,
      [rank, checksum, description],
    );
  }
}

function toRow(r: Record<string, unknown>): HistoryRow {
  return {
    installedRank: Number(r.installed_rank),
    version: (r.version as string | null) ?? null,
    description: String(r.description),
    type: r.type as HistoryType,
    script: String(r.script),
    checksum: (r.checksum as string | null) ?? null,
    installedBy: String(r.installed_by),
    installedOn: r.installed_on as Date,
    executionMs: Number(r.execution_ms),
    success: r.success === true,
    runId: (r.run_id as string | null) ?? null,
    phase: (r.phase as Phase) ?? 'expand',
    statementsApplied: r.statements_applied === null || r.statements_applied === undefined ? null : Number(r.statements_applied),
    statementsTotal: r.statements_total === null || r.statements_total === undefined ? null : Number(r.statements_total),
  };
}
