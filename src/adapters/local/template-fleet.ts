import type pg from 'pg';
import { inTransaction } from '../../core/transaction.ts';
import { endSessions, runSessionName } from '../../core/end-sessions.ts';
import { SafeshiftError, SqlStates, sqlState } from '../../core/errors.ts';
import { checkIdentifierOption, escapeIdentifier as ident, escapeLiteral } from '../../core/identifiers.ts';
import type { Fleet, ResourceStatus, SafeshiftTags } from '../../ports.ts';
import { applyFace, readFace, type DatabaseFace } from './database-face.ts';
import { assertReusable, dropUntagged, findDatabase, ours, parseTags, pickTags, tagClone, type TagComment } from './database-tags.ts';
import { connectPg, withPgSession } from './pg-connection.ts';

export interface TemplateFleetOptions {
  /** Receives progress lines (the CLI sends them to stderr). @default silent */
  readonly log?: (line: string) => void;
  /** How long a snapshot, clone or swap keeps retrying while its databases are in use. @default 30000 */
  readonly inUseWaitMs?: number;
}

/**
 * Written on the source database (a placeholder setting, which follows renames and is not copied to
 * the snapshot) before its connections are blocked, so a retried snapshot can repair a crash.
 */
const MARKER = 'safeshift.snapshot_in_progress';
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
  /** {@link Fleet.copiesWhileStarting}: every start here is a CREATE DATABASE that returns when the copy is made. */
  readonly copiesWhileStarting = true;
  private readonly log: (line: string) => void;
  private readonly inUseWaitMs: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly serverUrl: string,
    opts: TemplateFleetOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.inUseWaitMs = opts.inUseWaitMs ?? 30_000;
  }

  async startSnapshot(database: string, snapshotId: string, tags: SafeshiftTags): Promise<void> {
    checkNames({ database, snapshotId });
    await this.snapshot(database, snapshotId, tags);
  }

  /**
   * {@link Fleet.startSnapshotAndClone}: production is blocked once and copied twice at the same time,
   * on two sessions, into the snapshot and the clone. On a disk that takes two writers (most do) this
   * costs about one copy instead of a copy and then a copy of the copy.
   */
  async startSnapshotAndClone(database: string, snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
    checkNames({ database, snapshotId, cloneId });
    await this.snapshot(database, snapshotId, tags, cloneId);
  }

  async snapshotStatus(snapshotId: string): Promise<ResourceStatus> {
    return this.databaseStatus(snapshotId);
  }

  async startClone(snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
    checkNames({ snapshotId, cloneId });
    await this.admin((c) => this.cloneFromSnapshot(c, snapshotId, cloneId, tags), tags.runId);
  }

  /** A snapshot of `database`, and with `cloneId` a clone of the same moment made beside it. */
  private async snapshot(database: string, snapshotId: string, tags: SafeshiftTags, cloneId?: string): Promise<void> {
    const cloneTags: SafeshiftTags = { ...pickTags(tags), kind: 'clone' };
    await this.admin(async (c) => {
      await this.repairSource(c, database);
      const existing = await findDatabase(c, snapshotId);
      if (existing) {
        assertReusable(existing, 'snapshot', tags);
        // Sealing is part of making it, but someone may have opened it up since: seal it again.
        if (!existing.datistemplate || existing.datallowconn)
          await c.query(`alter database ${ident(snapshotId)} with is_template true allow_connections false`);
        // A retry after the snapshot alone was made: the snapshot is the same moment, so clone it.
        if (cloneId) await this.cloneFromSnapshot(c, snapshotId, cloneId, cloneTags);
        return;
      }
      const source = await findDatabase(c, database);
      if (!source) throw notFound(database);
      if (cloneId) {
        const clone = await findDatabase(c, cloneId);
        if (clone) {
          // Left by an attempt whose snapshot failed: it may be of an earlier moment, so it is made again.
          assertReusable(clone, 'database', cloneTags);
          await c.query(`drop database if exists ${ident(cloneId)} with (force)`);
        }
      }
      const face = await readFace(c, database, MARKER);
      const comment: TagComment = { safeshift: { ...pickTags(tags), name: snapshotId, resource: 'snapshot' }, production: face };
      const marker = JSON.stringify({ snapshotId, ...(cloneId ? { cloneId } : {}), allowConnections: source.datallowconn });
      await inTransaction(c, async () => {
        await c.query(`alter database ${ident(database)} set ${MARKER} = ${escapeLiteral(marker)}`);
        await c.query(`alter database ${ident(database)} with allow_connections false`);
      });
      // Held in an object, so a failure is rethrown whatever was thrown.
      let failure: { readonly error: unknown } | undefined;
      try {
        const began = Date.now();
        const { made, failure: copyFailure } = await this.copyBlocked(c, database, [snapshotId, ...(cloneId ? [cloneId] : [])], tags.runId);
        try {
          if (made.has(snapshotId)) {
            await inTransaction(c, async () => {
              await c.query(`comment on database ${ident(snapshotId)} is ${escapeLiteral(JSON.stringify(comment))}`);
              await c.query(`alter database ${ident(snapshotId)} with is_template true allow_connections false`);
            });
          }
          if (cloneId && made.has(cloneId)) await tagClone(c, cloneId, cloneTags, snapshotId, false);
        } catch (error) {
          // Untagged, a retry would refuse to touch them; we made them a moment ago, so drop them.
          for (const name of made) await dropUntagged(c, name).catch(() => undefined);
          throw error;
        }
        // What was made is tagged, so a retry reuses it (a lone snapshot is then cloned: the same moment).
        if (copyFailure) throw copyFailure.error;
        this.log(`snapshot "${snapshotId}"${cloneId ? ` and clone "${cloneId}"` : ''} of "${database}" made in ${Date.now() - began} ms`);
      } catch (error) {
        failure = { error };
      }
      try {
        await unblockSource(c, database, source.datallowconn);
      } catch (error) {
        // The marker stays, so the next startSnapshot of this database repairs it; say so.
        this.log(`could not let connections back into "${database}" (${messageOf(error)}); retrying the snapshot repairs it`);
        if (!failure) throw error;
      }
      if (failure) throw failure.error;
      // Every copy was made and tagged. Production's face goes on the clone once production is open
      // again: that needs no exclusive access.
      if (cloneId) await configureClone(c, cloneId, cloneTags, snapshotId, face);
    }, tags.runId);
  }

  /**
   * Copies the blocked `source` into each of `targets` at once, one session each, ending the source's
   * sessions first and retrying while it is still in use. Says which copies exist afterwards and,
   * when one could not be made, why.
   */
  private async copyBlocked(
    c: pg.Client,
    source: string,
    targets: readonly string[],
    runId: string,
  ): Promise<{ made: Set<string>; failure?: { readonly error: unknown } }> {
    const made = new Set<string>();
    const strategy = await copyStrategy(c, source);
    const extra = await Promise.all(targets.slice(1).map(() => connectPg(this.serverUrl, { applicationName: runSessionName(runId) })));
    const sessions = [c, ...extra];
    try {
      await this.whileInUse(`snapshot of "${source}"`, async () => {
        const ended = await terminate(c, [source]);
        if (ended > 0) this.log(`ended ${ended} session(s) on "${source}" for the snapshot`);
        const pending = targets.filter((t) => !made.has(t));
        const results = await Promise.allSettled(
          pending.map(async (t, i) => {
            // One session per target: there are as many as targets, and pending is a part of targets.
            const session = sessions[i];
            if (!session) throw new Error(`no session for copy ${i + 1} of ${pending.length} of "${source}"`);
            await session.query(`create database ${ident(t)} template ${ident(source)} strategy ${strategy}`);
            return t;
          }),
        );
        for (const r of results) if (r.status === 'fulfilled') made.add(r.value);
        const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (rejected) throw rejected.reason;
      });
      return { made };
    } catch (error) {
      return { made, failure: { error } };
    } finally {
      await Promise.all(extra.map((x) => x.end().catch(() => undefined)));
    }
  }

  /** Makes (or finishes) a clone of a snapshot: copied, tagged as unconfigured, then given production's face. */
  private async cloneFromSnapshot(c: pg.Client, snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
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
      await tagClone(c, cloneId, tags, snapshotId, false);
      this.log(`clone "${cloneId}" of "${snapshotId}" made in ${Date.now() - began} ms`);
    }
    await configureClone(c, cloneId, tags, snapshotId, production);
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
        throw new SafeshiftError(
          'NOT_SAFESHIFT_RESOURCE',
          `"${replacement}" was made for database "${replTags.safeshift.database}", not "${production}"; it will not be swapped in`,
        );
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

  /**
   * Each operation has its own short-lived admin session, so concurrent operations never share a
   * transaction. One that copies for a run is tagged with it, so a recovery can end a copy whose
   * process died (the server goes on copying for a client that is gone).
   */
  private admin<T>(fn: (client: pg.Client) => Promise<T>, runId?: string): Promise<T> {
    if (this.closed) return Promise.reject(new SafeshiftError('INTERNAL', 'the fleet is closed'));
    const run = withPgSession(this.serverUrl, { applicationName: runId === undefined ? 'safeshift fleet' : runSessionName(runId) }, fn);
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
          throw new SafeshiftError(
            'LOCK_TIMEOUT',
            `${what}: the database is still in use by other sessions after ${Math.round(this.inUseWaitMs / 1000)} s (${messageOf(error)}); ` +
              `stop what keeps reconnecting and retry`,
            { cause: error, details: { sqlState: SqlStates.objectInUse } },
          );
        }
        this.log(`${what}: database in use, retrying in ${delay} ms`);
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /**
   * {@link Fleet.repair}: what a crashed snapshot of `database` left (see {@link repairSource}), and
   * the run's own names among `leftovers` that a CREATE DATABASE killed before its tagging left behind.
   */
  async repair(database: string, leftovers: readonly string[]): Promise<string[]> {
    checkNames({ database });
    return this.admin(async (c) => {
      const done: string[] = [];
      const source = await this.repairSource(c, database);
      if (source) done.push(source);
      for (const name of leftovers) {
        if (name !== database && (await dropUntagged(c, name))) done.push(`dropped "${name}", a copy left half-made without safeshift's tags`);
      }
      return done;
    });
  }

  /** Undoes what a crashed snapshot left: its half-made (untagged) copy, and the source's blocked connections. Says what it did. */
  private async repairSource(c: pg.Client, database: string): Promise<string | undefined> {
    const { rows } = await c.query<{ value: string }>(
      `select substr(cfg, length($2) + 2) as value
         from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase, unnest(s.setconfig) cfg
        where d.datname = $1 and s.setrole = 0 and starts_with(cfg, $2 || '=')`,
      [database, MARKER],
    );
    if (!rows[0]) return undefined;
    const marker = JSON.parse(rows[0].value) as { snapshotId: string; cloneId?: string; allowConnections: boolean };
    const dropped: string[] = [];
    for (const half of [marker.snapshotId, marker.cloneId]) if (half && (await dropUntagged(c, half))) dropped.push(half);
    await unblockSource(c, database, marker.allowConnections);
    const note =
      `repaired "${database}" after an interrupted snapshot: connections ${marker.allowConnections ? 'allowed' : 'blocked'} again, as before` +
      (dropped.length ? `; dropped the half-made ${dropped.map((d) => `"${d}"`).join(', ')}` : '');
    this.log(note);
    return note;
  }
}

function checkNames(names: Record<string, string>): void {
  for (const [option, name] of Object.entries(names)) checkIdentifierOption(name, option);
  const values = Object.values(names);
  if (new Set(values).size !== values.length)
    throw new SafeshiftError('BAD_OPTION', `the database names must differ: ${values.map((v) => `"${v}"`).join(', ')}`);
}

function notFound(database: string): SafeshiftError {
  return new SafeshiftError('DATABASE_NOT_FOUND', `database "${database}" does not exist on the server`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Gives a clone production's face and marks it configured, in one transaction. */
async function configureClone(c: pg.Client, cloneId: string, tags: SafeshiftTags, snapshotId: string, face: DatabaseFace): Promise<void> {
  await inTransaction(c, async () => {
    await applyFace(c, cloneId, face);
    await tagClone(c, cloneId, tags, snapshotId, true);
  });
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
