import { createHash } from 'node:crypto';
import type pg from 'pg';
import { SqlStates, sqlState } from '../../core/errors.ts';
import type { FenceMark, FenceReport, ForeignWrite, OwnWriteMarks, WriteFence } from '../../ports.ts';
import { withDatabase, withPgSession } from './pg-connection.ts';

/** The logical message prefix a run's own transactions carry; the run id follows it. */
const OWN_PREFIX = 'safeshift run ';

/** Relation file numbers below this are the server's own catalogs, changed by any DDL (of the run too). */
const FIRST_USER_FILENODE = 16384;

/** Record types of the heap's resource managers that change a row (INSERT+INIT and the like share a first part). A TRUNCATE logs none at this wal_level. */
const ROW_CHANGES = ['INSERT', 'UPDATE', 'HOT_UPDATE', 'DELETE', 'CONFIRM', 'MULTI_INSERT'];

/**
 * The local {@link WriteFence}: reads the server's write-ahead log with `pg_walinspect`.
 *
 * A mark is a physical replication slot (so the server keeps the log from there) and the log
 * position. A check reads the log from the mark to its end: every transaction that logged a row
 * change (insert, update, delete, truncate) to one of the database's tables and committed, except
 * those that carry the run's logical message, is a foreign write. The log is the server's, not a
 * database's, so other databases' writes (the ledger's among them) are told apart by the database id
 * each change names.
 *
 * What it does not see: a foreign transaction that changed only the catalogs (DDL such as CREATE or
 * DROP TABLE). It needs a superuser (or the rights of pg_read_server_files and REPLICATION); without
 * them the check says it could not prove anything, and why.
 *
 * @example
 * ```ts
 * const fence = new LocalWriteFence(serverUrl);
 * const mark = await fence.mark('shop', runId);
 * // ... the run works; its transactions run fence.ownWriteSql(runId) ...
 * const { foreign } = await fence.check('shop', [mark], runId);
 * await fence.release(runId);
 * ```
 */
export class LocalWriteFence implements WriteFence {
  constructor(private readonly serverUrl: string) {}

  ownWrites(runId: string): OwnWriteMarks {
    const message = (transactional: boolean, suffix: string) =>
      `select pg_logical_emit_message(${String(transactional)}, ${literal(OWN_PREFIX + runId + suffix)}, '')`;
    return { inTransaction: message(true, ''), before: message(false, ' before'), after: message(false, ' after') };
  }

  async mark(databaseId: string, runId: string): Promise<FenceMark> {
    return this.admin(async (c) => {
      const slot = await keepLog(c, fenceSlotName(runId));
      const { rows } = await c.query<{ oid: number; lsn: string; at: Date }>(
        'select d.oid::int as oid, pg_current_wal_insert_lsn()::text as lsn, now() as at from pg_database d where d.datname = $1',
        [databaseId],
      );
      const row = rows[0];
      if (!row) throw new Error(`database "${databaseId}" does not exist`);
      return { database: databaseId, databaseOid: row.oid, lsn: row.lsn, at: row.at.toISOString(), slot };
    });
  }

  async check(databaseId: string, marks: readonly FenceMark[], runId: string): Promise<FenceReport> {
    return this.admin(async (c) => {
      const { rows } = await c.query<{ oid: number }>('select oid::int as oid from pg_database where datname = $1', [databaseId]);
      const oid = rows[0]?.oid;
      const mark = marks.find((m) => m.databaseOid === oid);
      if (!mark) return { proven: false, note: `the run made no mark of the database now called "${databaseId}"`, foreign: [] };
      const problem = await readyToRead(c);
      if (problem) return { proven: false, note: problem, foreign: [] };
      try {
        const foreign = await foreignWrites(c, mark, runId);
        return { proven: true, foreign: await this.named(databaseId, foreign) };
      } catch (error) {
        return { proven: false, note: `the log since ${mark.lsn} could not be read: ${messageOf(error)}`, foreign: [] };
      }
    });
  }

  async release(runId: string): Promise<void> {
    await this.admin(async (c) => {
      await c.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active', [fenceSlotName(runId)]);
    });
  }

  /** Foreign writes with their tables named, read in the database itself (where the storage numbers mean something). */
  private async named(databaseId: string, writes: readonly RawWrite[]): Promise<ForeignWrite[]> {
    if (writes.length === 0) return [];
    return withPgSession(withDatabase(this.serverUrl, databaseId), { applicationName: 'safeshift' }, async (client) => {
      const nodes = [...new Set(writes.flatMap((w) => w.filenodes))];
      const { rows } = await client.query<{ node: string; name: string | null }>(
        `select n::text as node, case when c.oid is not null then format('%I.%I', ns.nspname, c.relname) end as name
           from unnest($1::bigint[]) n
           left join pg_class c on c.oid = pg_filenode_relation(0, n::oid)
           left join pg_namespace ns on ns.oid = c.relnamespace`,
        [nodes],
      );
      const names = new Map(rows.map((r) => [r.node, r.name ?? `storage ${r.node} (since dropped)`]));
      return writes.map((w) => ({
        xid: w.xid,
        committedAt: w.committedAt,
        relations: [...new Set(w.filenodes.map((n) => names.get(n) ?? `storage ${n}`))].sort(),
        changes: w.changes,
      }));
    });
  }

  private admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    return withPgSession(this.serverUrl, { applicationName: 'safeshift' }, fn);
  }
}

/** The replication slot that keeps a run's log: one per run, whatever it marks. */
export function fenceSlotName(runId: string): string {
  return `safeshift_fence_${createHash('sha256').update(runId).digest('hex').slice(0, 24)}`;
}

/** Creates the run's slot (reserving the log from now) unless it exists; null when the server has no slot left to give. */
async function keepLog(c: pg.Client, slot: string): Promise<string | null> {
  const { rows } = await c.query('select 1 from pg_replication_slots where slot_name = $1', [slot]);
  if (rows.length > 0) return slot;
  try {
    await c.query('select pg_create_physical_replication_slot($1, true)', [slot]);
    return slot;
  } catch (error) {
    // Another step of the same run made it a moment ago (a repeated delivery): it is the run's.
    if (sqlState(error) === SqlStates.duplicateObject) return slot;
    // Every slot of max_replication_slots is taken: the mark stands, but a long run may outlive the log it needs.
    if (sqlState(error) === SqlStates.configurationLimitExceeded) return null;
    throw error;
  }
}

/**
 * Makes sure `pg_walinspect` is there and that everything logged so far is on disk, where it reads
 * from: commits may be asynchronous, and a commit with `synchronous_commit` on flushes all before it.
 * Returns why the log cannot be read, or undefined.
 */
async function readyToRead(c: pg.Client): Promise<string | undefined> {
  try {
    await c.query('create extension if not exists pg_walinspect');
  } catch (error) {
    // Two runs installing it at once: one wins, and it is there for both.
    if (sqlState(error) !== SqlStates.uniqueViolation && sqlState(error) !== SqlStates.duplicateObject) {
      return `the server's log reader (pg_walinspect) is not available: ${messageOf(error)}`;
    }
  }
  await c.query(`begin; set local synchronous_commit = on; select pg_logical_emit_message(true, 'safeshift fence', ''); commit`);
  return undefined;
}

interface RawWrite {
  readonly xid: string;
  readonly committedAt: string;
  readonly filenodes: readonly string[];
  readonly changes: number;
}

interface LoggedRecord {
  readonly xid: string;
  readonly rm: string;
  readonly description: string;
}

/**
 * Reads the log from the mark to its flushed end: the row changes logged for the database's own
 * tables and who made them, then every commit (with the subtransactions it took along, and the
 * storage it dropped: a TRUNCATE or a rewrite logs no row) and the run's own marks. A commit counts
 * as the run's when it carries the run's message, or falls between the run's before and after marks.
 */
async function foreignWrites(c: pg.Client, mark: FenceMark, runId: string): Promise<RawWrite[]> {
  const { rows: ends } = await c.query<{ lsn: string }>('select pg_current_wal_flush_lsn()::text as lsn');
  const end = ends[0]?.lsn ?? mark.lsn;
  const prefix = OWN_PREFIX + runId;
  // One pass over the log (the version 1.0 of pg_walinspect, PostgreSQL 15, has no per-block view:
  // the block references are read from each record's text).
  const { rows } = await c.query<LoggedRecord & { kind: 'change' | 'record'; filenode: string | null; n: number }>(
    `with r as materialized (
       select start_lsn, xid, resource_manager, record_type, description, block_ref
         from pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
        where resource_manager in ('Heap', 'Heap2', 'Transaction', 'LogicalMessage'))
     select 'change' as kind, r.xid::text as xid, m[1] as filenode, count(*)::int as n, null::pg_lsn as at, '' as rm, '' as description
       from r, lateral regexp_matches(coalesce(r.block_ref, ''), 'rel \\d+/' || $3::text || '/(\\d+)', 'g') m
      where r.resource_manager in ('Heap', 'Heap2') and split_part(r.record_type, '+', 1) = any($5::text[])
        and r.xid::text <> '0' and m[1]::bigint >= $4
      group by r.xid, m[1]
     union all
     select 'record', xid::text, null, 0, start_lsn, resource_manager, description
       from r
      where (resource_manager = 'Transaction' and record_type in ('COMMIT', 'COMMIT_PREPARED'))
         or (resource_manager = 'LogicalMessage' and description like $6)
      order by 1, 5`,
    [mark.lsn, end, mark.databaseOid, FIRST_USER_FILENODE, ROW_CHANGES, `%prefix "${prefix.replace(/[\\%_]/g, '\\$&')}%`],
  );
  const changes = rows.filter((r) => r.kind === 'change');
  const records = rows.filter((r) => r.kind === 'record');
  const topOf = new Map<string, string>();
  const commits = new Map<string, { at: string; dropped: string[] }>();
  const own = new Set<string>();
  const dropped = new RegExp(`(?:base|pg_tblspc/\\d+/[^/\\s]+)/${mark.databaseOid}/(\\d+)`, 'g');
  let window = false;
  for (const r of records) {
    if (r.rm === 'LogicalMessage') {
      if (r.description.includes(`prefix "${prefix} before"`)) window = true;
      else if (r.description.includes(`prefix "${prefix} after"`)) window = false;
      else if (r.description.startsWith(`transactional, prefix "${prefix}"`)) own.add(r.xid);
      continue;
    }
    if (window) own.add(r.xid);
    const at = r.description.split(';')[0]?.trim() ?? '';
    commits.set(r.xid, { at, dropped: [...r.description.matchAll(dropped)].map((m) => m[1] ?? '') });
    for (const sub of /subxacts:((?: \d+)+)/.exec(r.description)?.[1]?.trim().split(' ') ?? []) topOf.set(sub, r.xid);
  }
  const byTop = new Map<string, { filenodes: Set<string>; changes: number }>();
  const add = (xid: string, filenodes: readonly string[], n: number) => {
    const top = topOf.get(xid) ?? xid;
    if (!commits.has(top) || own.has(top)) return;
    const entry = byTop.get(top) ?? { filenodes: new Set<string>(), changes: 0 };
    for (const f of filenodes) entry.filenodes.add(f);
    entry.changes += n;
    byTop.set(top, entry);
  };
  for (const ch of changes) add(ch.xid, ch.filenode ? [ch.filenode] : [], ch.n);
  for (const [xid, commit] of commits) if (commit.dropped.length > 0) add(xid, commit.dropped, 0);
  // In the order they committed.
  return [...commits].flatMap(([xid, commit]) => {
    const w = byTop.get(xid);
    return w ? [{ xid, committedAt: commit.at, filenodes: [...w.filenodes], changes: w.changes }] : [];
  });
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
