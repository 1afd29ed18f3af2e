import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { inject } from 'vitest';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';

/** An empty database of its own for one test. */
export interface FreshDatabase {
  /** Its URL (holds the test cluster's password; fine in tests, never in product output). */
  readonly url: string;
  readonly name: string;
  /** A client connected to it; `drop()` closes it. */
  readonly client: pg.Client;
  /** Closes the client and drops the database, ending any session still on it. Safe to call twice. */
  drop(): Promise<void>;
}

let created = 0;

/** The URL of the run's test cluster (superuser, `postgres` database), from the global setup. */
export function testServerUrl(): string {
  return inject('safeshiftTestServerUrl');
}

/**
 * Creates a uniquely named, empty database on the run's test cluster and connects to it.
 *
 * @example
 * ```ts
 * let db: FreshDatabase;
 * beforeEach(async () => { db = await freshDatabase(); });
 * afterEach(() => db.drop());
 * it('creates the history table', async () => { await migrate({ client: db.client, ... }); });
 * ```
 */
export async function freshDatabase(): Promise<FreshDatabase> {
  const serverUrl = testServerUrl();
  // pid + counter keep parallel workers apart; the random part keeps reruns apart if a drop was missed.
  const name = `t_${process.pid}_${++created}_${randomBytes(3).toString('hex')}`;
  await asAdmin(serverUrl, (admin) => admin.query(`create database ${escapeIdentifier(name)}`));
  const url = withDatabase(serverUrl, name);
  const client = await connectPg(url, { applicationName: 'safeshift-test' });
  let dropped = false;
  return {
    url,
    name,
    client,
    async drop() {
      if (dropped) return;
      dropped = true;
      await client.end().catch(() => undefined);
      await asAdmin(serverUrl, (admin) => admin.query(`drop database if exists ${escapeIdentifier(name)} with (force)`));
    },
  };
}

/**
 * Runs `fn` with a fresh database and drops it afterwards, whether `fn` succeeded or not.
 *
 * @example
 * ```ts
 * it('runs a migration', () => withFreshDatabase(async ({ client }) => {
 *   await client.query('create table t (id int)');
 * }));
 * ```
 */
export async function withFreshDatabase<T>(fn: (db: FreshDatabase) => Promise<T>): Promise<T> {
  const db = await freshDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

async function asAdmin(serverUrl: string, fn: (admin: pg.Client) => Promise<unknown>): Promise<void> {
  const admin = await connectPg(serverUrl, { applicationName: 'safeshift-test-admin' });
  try {
    await fn(admin);
  } finally {
    await admin.end().catch(() => undefined);
  }
}
