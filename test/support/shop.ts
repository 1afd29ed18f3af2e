import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { seedShop } from '../../examples/seed/seed-shop.ts';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';
import { testServerUrl } from './database.ts';

export const EXAMPLE_MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/migrations');

const unique = () => randomBytes(4).toString('hex');

/** One case's copy of the shop. */
export interface CaseDatabase {
  readonly database: string;
  readonly url: string;
  withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>;
  drop(): Promise<void>;
}

/** A seeded example shop (at version 2) kept as a template, copied for each case in a file. */
export interface ShopTemplate {
  readonly template: string;
  readonly appRole: string;
  readonly appPassword: string;
  /** A new database copied from the template. Runs end its sessions, so `withClient` connects anew each time. */
  copy(prefix: string): Promise<CaseDatabase>;
  dispose(): Promise<void>;
}

/**
 * Seeds the example shop once (small: tests need real rows, not many) and serves copies of it, so a
 * test file can run dozens of upgrades on identical databases cheaply.
 */
export async function shopTemplate(orders = 500, serverUrl = testServerUrl()): Promise<ShopTemplate> {
  const template = `shop_tpl_${unique()}`;
  const appRole = `shop_app_${unique()}`;
  const appPassword = randomBytes(12).toString('hex');
  await seedShop({ serverUrl, database: template, appRole, appPassword, migrationsDir: EXAMPLE_MIGRATIONS, customers: 50, orders });
  // One admin session, opened again when the server lost it (a test that stops or crashes the server).
  let session: pg.Client | undefined;
  const admin = {
    async query(sql: string): Promise<void> {
      session ??= await connectPg(serverUrl, {
        onIdleError: () => {
          session = undefined;
        },
      });
      await session.query(sql);
    },
  };
  const copies: string[] = [];
  return {
    template,
    appRole,
    appPassword,
    async copy(prefix) {
      const database = `${prefix}_${unique()}`.slice(0, 60);
      await admin.query(`create database ${escapeIdentifier(database)} template ${escapeIdentifier(template)}`);
      await admin.query(`grant connect on database ${escapeIdentifier(database)} to ${escapeIdentifier(appRole)}`);
      copies.push(database);
      const url = withDatabase(serverUrl, database);
      return {
        database,
        url,
        withClient: async (fn) => {
          const client = await connectPg(url);
          try {
            return await fn(client);
          } finally {
            await client.end().catch(() => undefined);
          }
        },
        drop: async () => {
          await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
        },
      };
    },
    async dispose() {
      for (const d of copies) await admin.query(`drop database if exists ${escapeIdentifier(d)} with (force)`).catch(() => undefined);
      await admin.query(`drop database if exists ${escapeIdentifier(template)} with (force)`);
      await admin.query(`drop owned by ${escapeIdentifier(appRole)}`).catch(() => undefined);
      await admin.query(`drop role if exists ${escapeIdentifier(appRole)}`).catch(() => undefined);
      await session?.end().catch(() => undefined);
    },
  };
}

/**
 * What "exactly as before" and "fully upgraded" compare: the schema, every table's rows (the history
 * table by its applied versions only, since run ids and times differ between runs).
 */
export async function productionState(client: pg.Client): Promise<Record<string, unknown>> {
  const { rows: columns } = await client.query(`
    select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns
     where table_schema = 'public' order by table_name, ordinal_position`);
  const { rows: indexes } = await client.query(`select indexname, indexdef from pg_indexes where schemaname = 'public' order by 1`);
  const { rows: constraints } = await client.query(`
    select conrelid::regclass::text as rel, conname, pg_get_constraintdef(oid) as def from pg_constraint
     where connamespace = 'public'::regnamespace order by 1, 2`);
  const { rows: views } = await client.query(`select viewname, definition from pg_views where schemaname = 'public' order by 1`);
  const { rows: tables } = await client.query<{ t: string }>(`select tablename as t from pg_tables where schemaname = 'public' order by 1`);
  const data: Record<string, string> = {};
  for (const { t } of tables) {
    if (t === 'safeshift_schema_history') {
      const { rows } = await client.query<{ v: string | null }>(
        `select string_agg(coalesce(version, 'R:' || description), ',' order by installed_rank) as v from safeshift_schema_history where success`,
      );
      data[t] = String(rows[0]?.v);
      continue;
    }
    const { rows } = await client.query<{ sum: string }>(
      `select count(*)::text || ':' || coalesce(md5(string_agg(md5(x::text), ',' order by md5(x::text))), '') as sum from ${escapeIdentifier(t)} x`,
    );
    data[t] = String(rows[0]?.sum);
  }
  return { columns, indexes, constraints, views, data };
}

/** The app role's rights, which a quiesce must put back exactly. */
export async function roleState(client: pg.Client, role: string, database: string): Promise<Record<string, unknown>> {
  const { rows } = await client.query<Record<string, unknown>>(
    `
    select r.rolcanlogin, r.rolconnlimit,
           has_database_privilege(r.oid, d.oid, 'CONNECT') as can_connect
      from pg_roles r, pg_database d where r.rolname = $1 and d.datname = $2`,
    [role, database],
  );
  return rows[0] ?? {};
}

/** Databases of `kinds` (resource name prefixes) that runs made for `database`. */
async function runDatabases(client: pg.Client, database: string, kinds: RegExp): Promise<string[]> {
  const slug = database
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  const { rows } = await client.query<{ datname: string }>(`select datname from pg_database where datname like 'ss-%' order by 1`);
  return rows.map((r) => r.datname).filter((n) => kinds.test(n) && n.includes(`-${slug}-`));
}

/** Databases a run left behind that it should not have (clones, rehearsal snapshots). */
export function leftovers(client: pg.Client, database: string): Promise<string[]> {
  return runDatabases(client, database, /^ss-(rs|rc|new|rst)-/);
}

/** The databases runs replaced and keep for a while (ss-old: retired by a swap, ss-bad: replaced by a rollback). */
export function keptDatabases(client: pg.Client, database: string): Promise<string[]> {
  return runDatabases(client, database, /^ss-(old|bad)-/);
}
