import { createHash } from 'node:crypto';
import type { SqlClient } from '../ports.ts';
import { LockedError } from './errors.ts';
import type { HistoryLocation } from './history.ts';

/**
 * The advisory lock key for one history table: every runner migrating the same table (same
 * schema and name) in the same database competes for the same key, and different tables don't.
 */
export function advisoryLockKey(location: HistoryLocation): string {
  const digest = createHash('sha256').update(`safeshift:${location.schema}.${location.table}`).digest();
  return digest.readBigInt64BE(0).toString();
}

export interface AcquireOptions {
  /** How long to wait for another runner to finish, in ms. @default 60000 */
  readonly waitMs?: number;
  /** Called once when the lock is busy, so a person knows why nothing happens. */
  readonly onWait?: (holder: string) => void;
}

/**
 * Takes the session-level advisory lock that makes concurrent runs safe: a second runner waits up
 * to `waitMs` and then fails with LOCKED, naming who holds it. Returns a release function.
 *
 * @example
 * ```ts
 * const release = await acquireMigrationLock(client, DEFAULT_HISTORY, { waitMs: 10_000 });
 * try { ... } finally { await release(); }
 * ```
 */
export async function acquireMigrationLock(client: SqlClient, location: HistoryLocation, options: AcquireOptions = {}): Promise<() => Promise<void>> {
  const key = advisoryLockKey(location);
  const waitMs = options.waitMs ?? 60_000;
  const deadline = Date.now() + waitMs;
  let delay = 50;
  let told = false;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key]);
    if (rows[0]?.locked) {
      return async () => {
        await client.query('select pg_advisory_unlock($1::bigint)', [key]);
      };
    }
    const holder = await describeHolder(client, key);
    if (Date.now() >= deadline) {
      throw new LockedError(
        `another safeshift run holds the migration lock on this database (${holder}); ` +
          `waited ${Math.round(waitMs / 1000)}s. Try again when it has finished, or raise --lock-wait`,
        { holder, waitedMs: waitMs },
      );
    }
    if (!told) {
      options.onWait?.(holder);
      told = true;
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 1000);
  }
}

async function describeHolder(client: SqlClient, key: string): Promise<string> {
  // The bigint key is stored in pg_locks as two 32-bit halves.
  const { rows } = await client.query<{ pid: number; application_name: string | null; client_addr: string | null; age_s: number | null }>(
    `select a.pid, a.application_name, a.client_addr::text as client_addr,
            extract(epoch from now() - a.backend_start)::int as age_s
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted
        -- Advisory locks are per database: the same key on another database of the server is another lock.
        and l.database = (select oid from pg_database where datname = current_database())
        and l.classid = (($1::bigint >> 32) & 4294967295)::oid
        and l.objid = ($1::bigint & 4294967295)::oid
        and l.objsubid = 1
      limit 1`,
    [key],
  );
  const r = rows[0];
  if (!r) return 'holder unknown';
  return `pid ${r.pid}${r.application_name ? `, ${r.application_name}` : ''}${r.client_addr ? ` from ${r.client_addr}` : ''}, connected ${r.age_s ?? '?'}s ago`;
}
