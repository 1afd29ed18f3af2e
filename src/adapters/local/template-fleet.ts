import type pg from 'pg';
import { inTransaction } from '../../core/transaction.ts';
import { endSessions } from './end-sessions.ts';
import { SafeshiftError, SqlStates, sqlState } from '../../core/errors.ts';
import { checkIdentifierOption, escapeIdentifier as ident, escapeLiteral } from '../../core/identifiers.ts';
import type { Fleet, ResourceStatus, SafeshiftTags } from '../../ports.ts';
import { connectPg } from './pg-connection.ts';

export interface TemplateFleetOptions {
  /** Receives progress lines (the CLI sends them to stderr). @default silent */
  readonly log?: (line: string) => void;
  /** How long a snapshot, clone or swap keeps retrying while its databases are in use. @default 30000 */
  readonly inUseWaitMs?: number;
}

/** One `GRANT` as `aclexplode` reports it, grouped: who granted what to whom (`null` = PUBLIC). */
interface AclGrant { readonly grantor: string; readonly grantee: string | null; readonly privileges: string[]; readonly grantable: boolean }

/** What production looked like when it was snapshotted, so a clone can serve the app like it did. */
interface DatabaseFace {
  readonly owner: string;
  /** `null`: the built-in default privileges (datacl is NULL). */
  readonly acl: AclGrant[] | null;
  readonly connectionLimit: number;
  /** `ALTER DATABASE … SET` (role `null`) and `ALTER ROLE … IN DATABASE … SET`, as `name=value`. */
  readonly settings: { readonly role: string | null; readonly config: string[] }[];
}

/** The JSON safeshift writes into `COMMENT ON DATABASE`: it follows the database through renames. */
interface TagComment {
  readonly safeshift: SafeshiftTags & { readonly name: string; readonly resource: 'snapshot' | 'database' };
  /** Snapshots: production's owner, ACL and settings at snapshot time. */
  readonly production?: DatabaseFace;
  /** Clones: false until owner, ACL and settings are copied, so a retry after a crash finishes the job. */
  readonly configured?: boolean;
  readonly snapshotId?: string;
  /** Retired databases: the comment production had before safeshift's tags replaced it. */
  readonly priorComment?: string | null;
}

interface DatabaseRow { readonly datname: string; readonly datistemplate: boolean; readonly datallowconn: boolean; readonly comment: string | null }

/**
 * Written on the source database (a placeholder setting, which follows renames and is not copied to
 * the snapshot) before its connections are blocked, so a retried snapshot can repair a crash.
 */
const MARKER = 'safeshift.snapshot_in_progress';
/** Settings whose values are lists of quoted identifiers; the same list pg_dump keeps. */
const LIST_SETTINGS = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories']);
const KINDS = new Set(['pre-upgrade', 'safety', 'rehearsal', 'clone', 'retired']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The local {@link Fleet}: databases on one PostgreSQL server. A snapshot is a template database
 * copied file by file (`STRATEGY FILE_COPY`), a clone a database created from it with production's
 * owner, ACL and settings, a swap two renames in one transaction. Everything is synchronous, so a
 * status is only ever `available` or `missing`. Safeshift's tags live in `COMMENT ON DATABASE` as
 * JSON, and nothing without them is ever dropped.
 *
 * Snapshotting needs the source to itself: its connections are blocked and ended for the copy
 * (an app's pool sees them dropped and must reconnect), and always unblocked afterwards.
 *
 * @example
 * ```ts
 * const fleet = new TemplateFleet('postgres://postgres:pw@127.0.0.1:5432/postgres');
 * await fleet.startSnapshot('shop', 'ss-pre-shop-1', { runId: '1', database: 'shop', kind: 'pre-upgrade' });
 * await fleet.startClone('ss-pre-shop-1', 'ss-new-shop-1', { runId: '1', database: 'shop', kind: 'clone' });
 * await fleet.swap('shop', 'ss-new-shop-1', 'ss-old-shop-1');
 * await fleet.close();
 * ```
 */
export class TemplateFleet implements Fleet {
  private readonly log: (line: string) => void;
  private readonly inUseWaitMs: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly serverUrl: string, opts: TemplateFleetOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.inUseWaitMs = opts.inUseWaitMs ?? 30_000;
  }

  async startSnapshot(database: string, snapshotId: string, tags: SafeshiftTags): Promise<void> {
    checkNames({ database, snapshotId });
    await this.admin(async (c) => {
      await this.repairSource(c, database);
      const existing = await findDatabase(c, snapshotId);
      if (existing) {
        assertReusable(existing, 'snapshot', tags);
        // Sealing is part of making it, but someone may have opened it up since: seal it again.
        if (!existing.datistemplate || existing.datallowconn) await c.query(`alter database ${ident(snapshotId)} with is_template true allow_connections false`);
        return;
      }
      const source = await findDatabase(c, database);
      if (!source) throw notFound(database);
      const comment: TagComment = { safeshift: { ...pickTags(tags), name: snapshotId, resource: 'snapshot' }, production: await readFace(c, database) };
      const marker = JSON.stringify({ snapshotId, allowConnections: source.datallowconn });
      await inTransaction(c, async () => {
        await c.query(`alter database ${ident(database)} set ${MARKER} = ${escapeLiteral(marker)}`);
        await c.query(`alter database ${ident(database)} with allow_connections false`);
      });
      let failure: unknown;
      try {
        const began = Date.now();
        await this.whileInUse(`snapshot of "${database}"`, async () => {
          const ended = await terminate(c, [database]);
          if (ended > 0) this.log(`ended ${ended} session(s) on "${database}" for the snapshot`);
          await c.query(`create database ${ident(snapshotId)} template ${ident(database)} strategy ${await copyStrategy(c, database)}`);
        });
        try {
          await inTransaction(c, async () => {
            await c.query(`comment on database ${ident(snapshotId)} is ${escapeLiteral(JSON.stringify(comment))}`);
            await c.query(`alter database ${ident(snapshotId)} with is_template true allow_connections false`);
          });
        } catch (error) {
          // Untagged, a retry would refuse to touch it; we made it a moment ago, so drop it.
          await c.query(`drop database if exists ${ident(snapshotId)} with (force)`).catch(() => undefined);
          throw error;
        }
        this.log(`snapshot "${snapshotId}" of "${database}" made in ${Date.now() - began} ms`);
      } catch (error) {
        failure = error;
      }
      try {
        await unblockSource(c, database, source.datallowconn);
      } catch (error) {
        // The marker stays, so the next startSnapshot of this database repairs it; say so.
        this.log(`could not let connections back into "${database}" (${messageOf(error)}); retrying the snapshot repairs it`);
        if (failure === undefined) throw error;
      }
      if (failure !== undefined) throw failure;
    });
  }

  async snapshotStatus(snapshotId: string): Promise<ResourceStatus> {
    return this.databaseStatus(snapshotId);
  }

  async startClone(snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
    checkNames({ snapshotId, cloneId });
    await this.admin(async (c) => {
      const existing = await findDatabase(c, cloneId);
      if (existing && assertReusable(existing, 'database', tags).configured) return;
      const snapshot = await findDatabase(c, snapshotId);
      if (!snapshot) throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `snapshot "${snapshotId}" does not exist on the server`);
      const production = parseTags(snapshot.comment)?.production;
      if (!production) throw new SafeshiftError('SNAPSHOT_FOREIGN', `database "${snapshotId}" is not a snapshot safeshift made; it will not clone it`);
      if (!existing) {
        const began = Date.now();
        const strategy = await copyStrategy(c, snapshotId);
        await this.whileInUse(`clone of "${snapshotId}"`, () => c.query(`create database ${ident(cloneId)} template ${ident(snapshotId)} strategy ${strategy}`));
        const pending: TagComment = { safeshift: { ...pickTags(tags), name: cloneId, resource: 'database' }, configured: false, snapshotId };
        await c.query(`comment on database ${ident(cloneId)} is ${escapeLiteral(JSON.stringify(pending))}`);
        this.log(`clone "${cloneId}" of "${snapshotId}" made in ${Date.now() - began} ms`);
      }
      const done: TagComment = { safeshift: { ...pickTags(tags), name: cloneId, resource: 'database' }, configured: true, snapshotId };
      await inTransaction(c, async () => {
        await applyFace(c, cloneId, production);
        await c.query(`comment on database ${ident(cloneId)} is ${escapeLiteral(JSON.stringify(done))}`);
      });
    });
  }

  async databaseStatus(databaseId: string): Promise<ResourceStatus> {
    return this.admin(async (c) => ((await findDatabase(c, databaseId)) ? 'available' : 'missing'));
  }

  async swap(production: string, replacement: string, retiredId: string): Promise<void> {
    checkNames({ production, replacement, retiredId });
    await this.admin(async (c) => {
      const [prod, repl, retired] = [await findDatabase(c, production), await findDatabase(c, replacement), await findDatabase(c, retiredId)];
      if (prod && !repl && parseTags(prod.comment)?.safeshift.name === replacement) {
        this.log(`"${production}" already is "${replacement}"; nothing to swap`);
        return;
      }
      if (!prod) throw notFound(production);
      if (!repl) throw notFound(replacement);
      if (retired) throw new SafeshiftError('ALREADY_EXISTS', `cannot retire "${production}" as "${retiredId}": a database with that name already exists`);
      const replTags = ours(repl, 'database');
      if (replTags.safeshift.database !== production) {
        throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `"${replacement}" was made for database "${replTags.safeshift.database}", not "${production}"; it will not be swapped in`);
      }
      const retiredTags: TagComment = {
        safeshift: { runId: replTags.safeshift.runId, database: production, kind: 'retired', name: retiredId, resource: 'database' },
        priorComment: prod.comment,
      };
      await this.whileInUse(`swap of "${production}" and "${replacement}"`, async () => {
        await terminate(c, [production, replacement]);
        await inTransaction(c, async () => {
          await c.query(`alter database ${ident(production)} rename to ${ident(retiredId)}`);
          await c.query(`alter database ${ident(replacement)} rename to ${ident(production)}`);
          await c.query(`comment on database ${ident(retiredId)} is ${escapeLiteral(JSON.stringify(retiredTags))}`);
        });
      });
      this.log(`swapped "${replacement}" in as "${production}"; the old one is "${retiredId}"`);
    });
  }

  async deleteDatabase(databaseId: string): Promise<void> {
    checkNames({ databaseId });
    await this.admin(async (c) => {
      const row = await findDatabase(c, databaseId);
      if (!row) return;
      const tags = ours(row, 'database');
      if (tags.safeshift.database === databaseId) {
        throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `"${databaseId}" is the production database now (it was swapped in); it will not be deleted`);
      }
      await c.query(`drop database if exists ${ident(databaseId)} with (force)`);
      this.log(`deleted database "${databaseId}"`);
    });
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    checkNames({ snapshotId });
    await this.admin(async (c) => {
      const row = await findDatabase(c, snapshotId);
      if (!row) return;
      ours(row, 'snapshot');
      // A template cannot be dropped; DROP DATABASE cannot share a transaction, and a retry redoes both.
      await c.query(`alter database ${ident(snapshotId)} with is_template false`);
      await c.query(`drop database if exists ${ident(snapshotId)} with (force)`);
      this.log(`deleted snapshot "${snapshotId}"`);
    });
  }

  async snapshotTags(snapshotId: string): Promise<SafeshiftTags | undefined> {
    return this.admin(async (c) => {
      const tags = parseTags((await findDatabase(c, snapshotId))?.comment ?? null);
      return tags?.safeshift.resource === 'snapshot' ? pickTags(tags.safeshift) : undefined;
    });
  }

  /** Waits for operations in progress (a snapshot must unblock its source), then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Each operation has its own short-lived admin session, so concurrent operations never share a transaction. */
  private admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new SafeshiftError('INTERNAL', 'the fleet is closed'));
    const run = (async () => {
      const client = await connectPg(this.serverUrl, { applicationName: 'safeshift fleet' });
      try {
        return await fn(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run)).catch(() => undefined);
    return run;
  }

  /** Retries `attempt` with backoff while PostgreSQL says a database is in use (SQLSTATE 55006). */
  private async whileInUse<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.inUseWaitMs;
    let delay = 100;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (sqlState(error) !== SqlStates.objectInUse) throw error;
        if (Date.now() + delay > deadline) {
          throw new SafeshiftError('LOCK_TIMEOUT', `${what}: the database is still in use by other sessions after ${Math.round(this.inUseWaitMs / 1000)} s (${messageOf(error)}); stop what keeps reconnecting and retry`, { cause: error, details: { sqlState: SqlStates.objectInUse } });
        }
        this.log(`${what}: database in use, retrying in ${delay} ms`);
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /** Undoes what a crashed snapshot left: its half-made (untagged) copy, and the source's blocked connections. */
  private async repairSource(c: pg.Client, database: string): Promise<void> {
    const { rows } = await c.query<{ value: string }>(
      `select substr(cfg, length($2) + 2) as value
         from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase, unnest(s.setconfig) cfg
        where d.datname = $1 and s.setrole = 0 and starts_with(cfg, $2 || '=')`,
      [database, MARKER],
    );
    if (!rows[0]) return;
    const marker = JSON.parse(rows[0].value) as { snapshotId: string; allowConnections: boolean };
    const half = await findDatabase(c, marker.snapshotId);
    if (half && half.comment === null) await c.query(`drop database if exists ${ident(marker.snapshotId)} with (force)`);
    await unblockSource(c, database, marker.allowConnections);
    this.log(`repaired "${database}" after an interrupted snapshot (connections ${marker.allowConnections ? 'allowed' : 'blocked'} again, as before)`);
  }
}

function checkNames(names: Record<string, string>): void {
  for (const [option, name] of Object.entries(names)) checkIdentifierOption(name, option);
  const values = Object.values(names);
  if (new Set(values).size !== values.length) throw new SafeshiftError('BAD_OPTION', `the database names must differ: ${values.map((v) => `"${v}"`).join(', ')}`);
}

function pickTags(tags: SafeshiftTags): SafeshiftTags {
  return { runId: tags.runId, database: tags.database, kind: tags.kind };
}

function notFound(database: string): SafeshiftError {
  return new SafeshiftError('DATABASE_NOT_FOUND', `database "${database}" does not exist on the server`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function findDatabase(c: pg.Client, name: string): Promise<DatabaseRow | undefined> {
  const { rows } = await c.query<DatabaseRow>(
    `select datname, datistemplate, datallowconn, shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
    [name],
  );
  return rows[0];
}

function parseTags(comment: string | null): TagComment | undefined {
  if (!comment?.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(comment) as Partial<TagComment>;
    const t = value.safeshift;
    const valid = t && typeof t.runId === 'string' && typeof t.database === 'string' && KINDS.has(t.kind)
      && typeof t.name === 'string' && (t.resource === 'snapshot' || t.resource === 'database');
    return valid ? (value as TagComment) : undefined;
  } catch {
    return undefined;
  }
}

/** The tags of a database safeshift made as `resource`, or NOT_SAFESHIFT_RESOURCE. */
function ours(row: DatabaseRow, resource: 'snapshot' | 'database'): TagComment {
  const tags = parseTags(row.comment);
  if (!tags) {
    throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `database "${row.datname}" exists but has no safeshift tags; safeshift only changes or deletes what it made`);
  }
  if (tags.safeshift.resource !== resource) {
    throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `"${row.datname}" is a safeshift ${tags.safeshift.resource}, not a ${resource}`);
  }
  return tags;
}

/**
 * Lets a retried create reuse what the first attempt made, and nothing else: the existing database must
 * carry this run's tags (as the AWS fleet requires, with the same codes).
 */
function assertReusable(row: DatabaseRow, resource: 'snapshot' | 'database', want: SafeshiftTags): TagComment {
  const got = parseTags(row.comment);
  const t = got?.safeshift;
  if (got && t && t.resource === resource && t.runId === want.runId && t.database === want.database && t.kind === want.kind) return got;
  if (t && resource === 'snapshot' && t.database !== want.database) {
    throw new SafeshiftError('SNAPSHOT_FOREIGN', `snapshot "${row.datname}" already exists but was taken of database "${t.database}", not "${want.database}"; choose another snapshot id`);
  }
  const whose = t ? `safeshift run ${t.runId} (${t.kind} ${t.resource} of ${t.database})` : 'something other than safeshift (it has no safeshift tags)';
  throw new SafeshiftError('ALREADY_EXISTS', `database "${row.datname}" already exists and belongs to ${whose}, not to run ${want.runId}; it was left alone. Delete it or start the run with another id.`);
}


/** Ends every other session on the databases and waits until they are gone. */
function terminate(c: pg.Client, databases: string[]): Promise<number> {
  return endSessions(c, 'datname = any($1::text[])', [databases]);
}

async function unblockSource(c: pg.Client, database: string, allowConnections: boolean): Promise<void> {
  await inTransaction(c, async () => {
    await c.query(`alter database ${ident(database)} with allow_connections ${allowConnections ? 'true' : 'false'}`);
    await c.query(`alter database ${ident(database)} reset ${MARKER}`);
  });
}

async function readFace(c: pg.Client, database: string): Promise<DatabaseFace> {
  const { rows } = await c.query<{ owner: string; connection_limit: number; acl: { grantor: string; grantee: string | null; privilege: string; grantable: boolean }[] | null; settings: DatabaseFace['settings'] }>(
    `select pg_get_userbyid(d.datdba) as owner, d.datconnlimit as connection_limit,
            case when d.datacl is null then null else coalesce((
              select json_agg(json_build_object('grantor', pg_get_userbyid(a.grantor),
                       'grantee', case when a.grantee = 0 then null else pg_get_userbyid(a.grantee) end,
                       'privilege', a.privilege_type, 'grantable', a.is_grantable) order by u.n)
                from unnest(d.datacl) with ordinality u(item, n), aclexplode(array[u.item]) a), '[]') end as acl,
            coalesce((select json_agg(json_build_object('role', case when s.setrole = 0 then null else pg_get_userbyid(s.setrole) end,
                       'config', array(select cfg from unnest(s.setconfig) cfg where not starts_with(cfg, $2 || '='))))
                from pg_db_role_setting s where s.setdatabase = d.oid), '[]') as settings
       from pg_database d where d.datname = $1`,
    [database, MARKER],
  );
  const row = rows[0];
  if (!row) throw notFound(database);
  // aclexplode gives one row per privilege; one GRANT per aclitem keeps the array's order and grantors.
  const acl: AclGrant[] = [];
  for (const g of row.acl ?? []) {
    const last = acl[acl.length - 1];
    if (last && last.grantor === g.grantor && last.grantee === g.grantee && last.grantable === g.grantable) last.privileges.push(g.privilege);
    else acl.push({ grantor: g.grantor, grantee: g.grantee, grantable: g.grantable, privileges: [g.privilege] });
  }
  return { owner: row.owner, connectionLimit: row.connection_limit, acl: row.acl === null ? null : acl, settings: row.settings.filter((s) => s.config.length > 0) };
}

/** Gives a clone production's owner, privileges and settings. Idempotent: it first clears what a retry would find. */
async function applyFace(c: pg.Client, database: string, face: DatabaseFace): Promise<void> {
  const db = ident(database);
  await c.query(`alter database ${db} owner to ${ident(face.owner)}`);
  await c.query(`alter database ${db} with connection limit ${Number(face.connectionLimit)}`);
  if (face.acl) {
    // Empty the ACL (as the owner, cascading to grants made by others), then grant exactly what production had.
    const { rows } = await c.query<{ grantee: string | null }>(
      `select distinct case when a.grantee = 0 then null else pg_get_userbyid(a.grantee) end as grantee
         from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a where d.datname = $1`,
      [database],
    );
    for (const { grantee } of rows) await c.query(`revoke all on database ${db} from ${grantee === null ? 'public' : ident(grantee)} cascade`);
    const ordered = [...face.acl.filter((g) => g.grantor === face.owner), ...face.acl.filter((g) => g.grantor !== face.owner)];
    for (const g of ordered) {
      // A grant made by another role is made as that role, so the ACL names the same grantor.
      if (g.grantor !== face.owner) await c.query(`set local role ${ident(g.grantor)}`);
      await c.query(`grant ${g.privileges.join(', ')} on database ${db} to ${g.grantee === null ? 'public' : ident(g.grantee)}${g.grantable ? ' with grant option' : ''}`);
      if (g.grantor !== face.owner) await c.query('reset role');
    }
  }
  await c.query(`alter database ${db} reset all`);
  const { rows: roleRows } = await c.query<{ role: string }>(
    `select pg_get_userbyid(s.setrole) as role from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = $1 and s.setrole <> 0`,
    [database],
  );
  for (const { role } of roleRows) await c.query(`alter role ${ident(role)} in database ${db} reset all`);
  for (const { role, config } of face.settings) {
    const target = role === null ? `database ${db}` : `role ${ident(role)} in database ${db}`;
    for (const entry of config) {
      const eq = entry.indexOf('=');
      const name = entry.slice(0, eq);
      const value = entry.slice(eq + 1);
      const values = LIST_SETTINGS.has(name.toLowerCase()) ? splitList(value) : [value];
      await c.query(`alter ${target} set ${name.split('.').map(ident).join('.')} to ${values.map(escapeLiteral).join(', ')}`);
    }
  }
}

/**
 * Splits a stored list setting (`"$user", public`) into its elements, unquoted: given back as literals,
 * the server quotes each again as it did at first.
 */
function splitList(value: string): string[] {
  const items: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,]*?))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    items.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] ?? ''));
  }
  return items.length > 0 ? items : [''];
}

/** Below this size a WAL-logged copy wins: FILE_COPY's two checkpoints cost more than the copying. */
const WAL_LOG_BELOW_BYTES = 64 * 1024 * 1024;

/**
 * How to copy a database: FILE_COPY copies its files (fastest for large databases; it checkpoints
 * twice), WAL_LOG copies block by block through the WAL (no checkpoint; faster for small ones).
 */
async function copyStrategy(c: pg.Client, database: string): Promise<'file_copy' | 'wal_log'> {
  const { rows } = await c.query<{ bytes: string }>('select pg_database_size($1)::text as bytes', [database]);
  return Number(rows[0]?.bytes ?? 0) < WAL_LOG_BELOW_BYTES ? 'wal_log' : 'file_copy';
}
