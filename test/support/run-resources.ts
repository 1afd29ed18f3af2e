import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { SqlStates, sqlState } from '../../src/core/errors.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';
import { testServerUrl } from './database.ts';
import type { CaseDatabase, ShopTemplate } from './shop.ts';

/** The ledger's control database (PostgresLedger's default). */
const CONTROL_DATABASE = 'safeshift_control';
const LEDGER_TABLES = ['safeshift_lock', 'safeshift_run', 'safeshift_snapshot', 'safeshift_quiesce', 'safeshift_rehearsal'];

/**
 * What runs leave on purpose and a test must remove itself: the snapshots (pre-upgrade, safety)
 * runs keep for Restore, anything else tagged as made for `database`, and the ledger's rows about it.
 * Only databases whose safeshift tags name `database` are dropped, never `database` itself.
 *
 * @example
 * ```ts
 * afterEach(() => dropRunResources(db.database));
 * ```
 */
export async function dropRunResources(database: string): Promise<string[]> {
  const serverUrl = testServerUrl();
  const admin = await connectPg(serverUrl, { applicationName: 'safeshift-test-cleanup' });
  const dropped: string[] = [];
  try {
    const { rows } = await admin.query<{ datname: string; comment: string | null }>(
      `select datname, shobj_description(oid, 'pg_database') as comment from pg_database where datname <> $1`,
      [database],
    );
    for (const row of rows) {
      if (taggedDatabase(row.comment) !== database) continue;
      const name = escapeIdentifier(row.datname);
      await admin.query(`alter database ${name} with is_template false`).catch(() => undefined);
      await admin.query(`drop database if exists ${name} with (force)`);
      dropped.push(row.datname);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
  await forgetInLedger(serverUrl, database);
  return dropped;
}

/**
 * Databases still on the server that are one of `databases` or were made by safeshift for one of them
 * (tagged so, or named as its resources are): what a test file checks it left nothing behind with.
 */
export async function remainingDatabases(databases: readonly string[]): Promise<string[]> {
  const wanted = new Set(databases);
  const slugs = databases.map(
    (d) =>
      `-${d
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 24)}-`,
  );
  const admin = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-cleanup' });
  try {
    const { rows } = await admin.query<{ datname: string; comment: string | null }>(
      `select datname, shobj_description(oid, 'pg_database') as comment from pg_database order by 1`,
    );
    return rows
      .filter((r) => {
        const owner = taggedDatabase(r.comment);
        return wanted.has(r.datname) || (owner !== undefined && wanted.has(owner)) || (r.datname.startsWith('ss-') && slugs.some((s) => r.datname.includes(s)));
      })
      .map((r) => r.datname);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** Which database a safeshift tag comment (JSON in COMMENT ON DATABASE) says a resource belongs to. */
function taggedDatabase(comment: string | null): string | undefined {
  if (!comment?.startsWith('{')) return undefined;
  try {
    const tags = (JSON.parse(comment) as { safeshift?: { database?: unknown } }).safeshift;
    return typeof tags?.database === 'string' ? tags.database : undefined;
  } catch {
    return undefined;
  }
}

async function forgetInLedger(serverUrl: string, database: string): Promise<void> {
  let control;
  try {
    control = await connectPg(withDatabase(serverUrl, CONTROL_DATABASE), { applicationName: 'safeshift-test-cleanup' });
  } catch (error) {
    // No ledger yet: nothing recorded.
    if (sqlState((error as { cause?: unknown }).cause) === SqlStates.invalidCatalogName) return;
    throw error;
  }
  try {
    for (const table of LEDGER_TABLES) await control.query(`delete from ${escapeIdentifier(table)} where database = $1`, [database]);
  } finally {
    await control.end().catch(() => undefined);
  }
}

/** Whether a role exists on the test server (roles are cluster-wide: a test file drops the ones it made). */
export async function roleExists(role: string): Promise<boolean> {
  const admin = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-cleanup' });
  try {
    return ((await admin.query('select 1 from pg_roles where rolname = $1', [role])).rowCount ?? 0) > 0;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** Drops a case's copy of the shop now, with everything runs made for it. */
export async function dropCase(db: CaseDatabase): Promise<void> {
  await dropRunResources(db.database);
  await db.drop();
}

/**
 * The copies of the shop one test file makes. `copy` hands out one that `cleanUp()` drops (newest
 * first, with whatever else `onCleanup` was given); every copy, tracked or only `remember`ed, is kept
 * in `made` so the file can check at the end that none of them, nor anything runs made for them, is left.
 *
 * @example
 * ```ts
 * const copies = new TrackedCopies();
 * afterEach(() => copies.cleanUp());
 * afterAll(async () => expect(await remainingDatabases(copies.made)).toEqual([]));
 * it('…', async () => { const db = await copies.copy(shop, 'case'); … });
 * ```
 */
export class TrackedCopies {
  readonly made: string[] = [];
  private readonly cleanups: (() => Promise<unknown>)[] = [];

  /** A copy of the shop, dropped with everything runs made for it at the next `cleanUp()`. */
  async copy(shop: ShopTemplate, prefix: string): Promise<CaseDatabase> {
    const db = this.remember(await shop.copy(prefix));
    this.onCleanup(() => dropCase(db));
    return db;
  }

  /** Counts a copy the caller drops itself among those checked at the end. */
  remember(db: CaseDatabase): CaseDatabase {
    this.made.push(db.database);
    return db;
  }

  onCleanup(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn);
  }

  /** Runs what was registered, newest first, and forgets it. */
  async cleanUp(): Promise<void> {
    for (const c of this.cleanups.splice(0).reverse()) await c();
  }
}
