import pg from 'pg';
import { LockedError, SafeshiftError, SqlStates, sqlState } from '../../core/errors.ts';
import { checkIdentifierOption, escapeIdentifier } from '../../core/identifiers.ts';
import type { Ledger, LockRecord, QuiesceRecord, RehearsalRecord, RunRecord, SnapshotRecord } from '../../ports.ts';
import { connectionFailure, connectPg, withDatabase } from './pg-connection.ts';

export interface PostgresLedgerOptions {
  /** The control database, beside the application's on the same server. Created on first use. @default 'safeshift_control' */
  readonly database?: string;
}

/** How long to wait for the server, as {@link connectPg} does. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The pool's sessions: each gives up connecting after {@link CONNECT_TIMEOUT_MS}. Given to the pool
 * itself, the timeout would also bound a query's wait for a free session, which may take longer.
 */
class LedgerClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super({ ...(typeof config === 'string' ? { connectionString: config } : config), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  }
}

/** Any constant: two processes creating the tables at once take turns on it. */
const SCHEMA_LOCK_KEY = 7_305_104_301;

/**
 * Records are stored whole as jsonb (steps may add fields the ports do not name); the columns beside
 * them are only the keys the ledger filters and sorts on.
 */
const SCHEMA = `
  create table if not exists safeshift_lock (
    database text primary key, owner text not null, acquired_at timestamptz not null, expires_at timestamptz not null);
  create table if not exists safeshift_run (
    run_id text primary key, database text not null, started_at timestamptz not null, seq bigserial, record jsonb not null);
  create index if not exists safeshift_run_by_database on safeshift_run (database, started_at desc);
  create table if not exists safeshift_snapshot (
    snapshot_id text primary key, database text not null, created_at timestamptz not null, seq bigserial, record jsonb not null);
  create table if not exists safeshift_quiesce (
    run_id text not null, database text not null, api_id text not null, status text not null, seq bigserial, record jsonb not null,
    primary key (run_id, database, api_id));
  create table if not exists safeshift_rehearsal (
    run_id text primary key, database text not null, created_at timestamptz not null, seq bigserial, record jsonb not null);
`;

interface LockRow {
  database: string;
  owner: string;
  acquired_at: Date;
  expires_at: Date;
}

/**
 * The local {@link Ledger}: tables in a control database beside the application's, on the same
 * server, so restoring or swapping an application database never touches the record of what was done.
 *
 * @example
 * ```ts
 * const ledger = await PostgresLedger.open('postgres://postgres:pw@127.0.0.1:5432/postgres');
 * try {
 *   await ledger.acquireLock('shop', runId, 6 * 3_600_000);
 *   await ledger.startRun({ runId, database: 'shop', kind: 'upgrade', status: 'running', startedAt: new Date().toISOString() });
 * } finally {
 *   await ledger.close();
 * }
 * ```
 */
export class PostgresLedger implements Ledger {
  private constructor(
    private readonly pool: pg.Pool,
    readonly database: string,
  ) {}

  /** {@link Ledger.databaseName}: the control database, on the same server as production. */
  get databaseName(): string {
    return this.database;
  }

  /** Connects to the control database, creating it and its tables when they are missing. Safe to run twice at once. */
  static async open(serverUrl: string, opts: PostgresLedgerOptions = {}): Promise<PostgresLedger> {
    const database = checkIdentifierOption(opts.database ?? 'safeshift_control', 'ledger database');
    const url = withDatabase(serverUrl, database);
    const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'safeshift ledger', Client: LedgerClient });
    // An idle pooled connection that drops is replaced on the next query; it must not crash the process.
    pool.on('error', () => undefined);
    try {
      // The tables are made on the pool's first session, which then stays for the ledger's queries:
      // every local run opens a ledger, and a session less is a backend start and a login less.
      const setup = await connectFirst(pool, url).catch(async (error: unknown) => {
        if (sqlState((error as { cause?: unknown }).cause) !== SqlStates.invalidCatalogName) throw error;
        await createDatabase(serverUrl, database);
        return connectFirst(pool, url);
      });
      try {
        await setup.query('begin');
        await setup.query('select pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
        await setup.query(SCHEMA);
        await setup.query('commit');
        setup.release();
      } catch (error) {
        // Given the error, the pool ends that session instead of keeping it, half-way through a transaction.
        setup.release(error instanceof Error ? error : true);
        throw error;
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return new PostgresLedger(pool, database);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async acquireLock(database: string, owner: string, ttlMs: number): Promise<LockRecord> {
    // A few tries: the holder may release between our insert and our look at who holds it.
    for (let attempt = 0; attempt < 3; attempt++) {
      // Atomic: a new lock is inserted; an existing one is refreshed only for the same owner (re-entrant),
      // never for another, even when it has expired.
      const { rows } = await this.pool.query<LockRow>(
        `insert into safeshift_lock as l (database, owner, acquired_at, expires_at)
         values ($1, $2, now(), now() + make_interval(secs => $3::float8 / 1000))
         on conflict (database) do update set expires_at = excluded.expires_at where l.owner = excluded.owner
         returning database, owner, acquired_at, expires_at`,
        [database, owner, ttlMs],
      );
      if (rows[0]) return lockRecord(rows[0]);
      const { rows: held } = await this.pool.query<LockRow & { age_ms: number; expired_ms: number }>(
        `select database, owner, acquired_at, expires_at,
                (extract(epoch from now() - acquired_at) * 1000)::float8 as age_ms,
                (extract(epoch from now() - expires_at) * 1000)::float8 as expired_ms
           from safeshift_lock where database = $1`,
        [database],
      );
      const holder = held[0];
      if (!holder) continue;
      const details = { ...lockRecord(holder), ageMs: Math.round(holder.age_ms), stale: holder.expired_ms >= 0 };
      const age = duration(holder.age_ms);
      if (holder.expired_ms >= 0) {
        throw new LockedError(
          `database "${database}" is locked by run "${holder.owner}" (taken ${age} ago), whose lock expired ${duration(holder.expired_ms)} ago: it is stale, ` +
            `probably from a run that crashed. Check that run is not still going, then break the lock on purpose: safeshift unlock --database ${database}`,
          details,
        );
      }
      throw new LockedError(
        `database "${database}" is locked by run "${holder.owner}" (taken ${age} ago, expires in ${duration(-holder.expired_ms)}). ` +
          `Wait for it to finish, or see: safeshift runs --database ${database}`,
        details,
      );
    }
    throw new LockedError(`the lock on database "${database}" changed hands repeatedly while taking it; try again`, { database });
  }

  async releaseLock(database: string, owner: string): Promise<void> {
    await this.pool.query('delete from safeshift_lock where database = $1 and owner = $2', [database, owner]);
  }

  async renewLock(database: string, owner: string, ttlMs: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'update safeshift_lock set expires_at = now() + make_interval(secs => $3::float8 / 1000) where database = $1 and owner = $2',
      [database, owner, ttlMs],
    );
    return (rowCount ?? 0) > 0;
  }

  async getLock(database: string): Promise<LockRecord | undefined> {
    const { rows } = await this.pool.query<LockRow>('select database, owner, acquired_at, expires_at from safeshift_lock where database = $1', [database]);
    return rows[0] && lockRecord(rows[0]);
  }

  async breakLock(database: string): Promise<LockRecord | undefined> {
    const { rows } = await this.pool.query<LockRow>('delete from safeshift_lock where database = $1 returning database, owner, acquired_at, expires_at', [
      database,
    ]);
    return rows[0] && lockRecord(rows[0]);
  }

  async startRun(run: RunRecord): Promise<RunRecord> {
    const { rows } = await this.pool.query<{ record: RunRecord }>(
      `with inserted as (
         insert into safeshift_run (run_id, database, started_at, record) values ($1, $2, $3, $4)
         on conflict (run_id) do nothing returning record)
       select record from inserted union all select record from safeshift_run where run_id = $1 limit 1`,
      [run.runId, run.database, timeOf(run.startedAt), run],
    );
    // A concurrent start of the same run commits after this statement's snapshot: read it afterwards.
    const record = rows[0]?.record ?? (await this.getRun(run.runId)) ?? run;
    if (record.database !== run.database || record.kind !== run.kind) {
      throw new SafeshiftError(
        'BAD_OPTION',
        `run id "${run.runId}" is already used by a ${record.kind} run of database "${record.database}"; use another run id`,
      );
    }
    return record;
  }

  async updateRun(runId: string, patch: Partial<Omit<RunRecord, 'runId' | 'database' | 'kind'>>): Promise<RunRecord> {
    // `||` merges in one statement, so two steps patching different fields never lose each other's write.
    const { runId: _r, database: _d, kind: _k, ...safe } = patch as Partial<RunRecord>;
    const { rows } = await this.pool.query<{ record: RunRecord }>(
      `update safeshift_run set record = record || $2::jsonb,
              started_at = coalesce($3::timestamptz, started_at)
        where run_id = $1 returning record`,
      [runId, JSON.stringify(safe), safe.startedAt === undefined ? null : timeOf(safe.startedAt)],
    );
    if (!rows[0]) throw new SafeshiftError('RUN_NOT_FOUND', `run "${runId}" is not in the ledger (${this.database})`);
    return rows[0].record;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const { rows } = await this.pool.query<{ record: RunRecord }>('select record from safeshift_run where run_id = $1', [runId]);
    return rows[0]?.record;
  }

  async listRuns(database?: string, limit?: number): Promise<RunRecord[]> {
    const { rows } = await this.pool.query<{ record: RunRecord }>(
      `select record from safeshift_run where $1::text is null or database = $1
        order by started_at desc, seq desc limit $2`,
      [database ?? null, limit ?? null],
    );
    return rows.map((r) => r.record);
  }

  async putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    await this.pool.query(
      `insert into safeshift_snapshot (snapshot_id, database, created_at, record) values ($1, $2, $3, $4)
       on conflict (snapshot_id) do update set database = excluded.database, created_at = excluded.created_at, record = excluded.record`,
      [snapshot.snapshotId, snapshot.database, timeOf(snapshot.createdAt), snapshot],
    );
  }

  async getSnapshot(snapshotId: string): Promise<SnapshotRecord | undefined> {
    const { rows } = await this.pool.query<{ record: SnapshotRecord }>('select record from safeshift_snapshot where snapshot_id = $1', [snapshotId]);
    return rows[0]?.record;
  }

  /** Newest first. */
  async listSnapshots(database?: string): Promise<SnapshotRecord[]> {
    const { rows } = await this.pool.query<{ record: SnapshotRecord }>(
      'select record from safeshift_snapshot where $1::text is null or database = $1 order by created_at desc, seq desc',
      [database ?? null],
    );
    return rows.map((r) => r.record);
  }

  async putQuiesce(record: QuiesceRecord): Promise<void> {
    await this.pool.query(
      `insert into safeshift_quiesce (run_id, database, api_id, status, record) values ($1, $2, $3, $4, $5)
       on conflict (run_id, database, api_id) do update set status = excluded.status, record = excluded.record`,
      [record.runId, record.database, record.apiId, record.status, record],
    );
  }

  /** In the order they were first recorded. `active: true`: not yet resumed; `active: false`: resumed. */
  async listQuiesced(filter: { readonly database?: string; readonly runId?: string; readonly active?: boolean } = {}): Promise<QuiesceRecord[]> {
    const { rows } = await this.pool.query<{ record: QuiesceRecord }>(
      `select record from safeshift_quiesce
        where ($1::text is null or database = $1) and ($2::text is null or run_id = $2)
          and ($3::boolean is null or (status <> 'resumed') = $3)
        order by seq`,
      [filter.database ?? null, filter.runId ?? null, filter.active ?? null],
    );
    return rows.map((r) => r.record);
  }

  async putRehearsal(record: RehearsalRecord): Promise<void> {
    await this.pool.query(
      `insert into safeshift_rehearsal (run_id, database, created_at, record) values ($1, $2, $3, $4)
       on conflict (run_id) do update set database = excluded.database, created_at = excluded.created_at, record = excluded.record`,
      [record.runId, record.database, timeOf(record.createdAt), record],
    );
  }

  /** Newest first. */
  async listRehearsals(database?: string): Promise<RehearsalRecord[]> {
    const { rows } = await this.pool.query<{ record: RehearsalRecord }>(
      'select record from safeshift_rehearsal where $1::text is null or database = $1 order by created_at desc, seq desc',
      [database ?? null],
    );
    return rows.map((r) => r.record);
  }
}

/** The pool's first session, its failure told as {@link connectPg} tells one. */
async function connectFirst(pool: pg.Pool, url: string): Promise<pg.PoolClient> {
  const began = Date.now();
  try {
    return await pool.connect();
  } catch (error) {
    throw connectionFailure(error, url, CONNECT_TIMEOUT_MS, Date.now() - began >= CONNECT_TIMEOUT_MS);
  }
}

/** CREATE DATABASE, where another process doing the same at the same moment is success. */
async function createDatabase(serverUrl: string, database: string): Promise<void> {
  const admin = await connectPg(serverUrl, { applicationName: 'safeshift ledger' });
  try {
    await admin.query(`create database ${escapeIdentifier(database)}`);
  } catch (error) {
    // Losing the race shows as 42P04, or as a unique violation on pg_database's name index.
    const state = sqlState(error);
    if (state !== SqlStates.duplicateDatabase && state !== SqlStates.uniqueViolation) throw error;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

function lockRecord(row: LockRow): LockRecord {
  return { database: row.database, owner: row.owner, acquiredAt: row.acquired_at.toISOString(), expiresAt: row.expires_at.toISOString() };
}

/** An ISO time for a sort column; a record without a valid one sorts as written now rather than failing the write. */
function timeOf(iso: string | undefined): Date {
  const time = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isNaN(time) ? new Date() : new Date(time);
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
