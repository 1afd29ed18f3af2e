import type pg from 'pg';
import { connectPg, redactUrl, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { OptionError, SqlStates, sqlState } from '../../src/core/errors.ts';
import { DEFAULT_HISTORY } from '../../src/core/history.ts';
import { checkIdentifierOption, escapeIdentifier, escapeLiteral } from '../../src/core/identifiers.ts';
import type { Logger } from '../../src/core/logger.ts';
import { migrate } from '../../src/core/migrate.ts';
import { requireVersion } from '../../src/core/version.ts';

export interface SeedShopOptions {
  /** A superuser URL on the maintenance database (`postgres`); it creates the database and the role. */
  readonly serverUrl: string;
  /** The shop's database. Dropped first if it exists, so a seed always starts from nothing. */
  readonly database: string;
  /** The login role the API connects as: created if missing, its password (re)set either way. */
  readonly appRole: string;
  readonly appPassword: string;
  /** The example migrations (`examples/migrations`); applied up to version 2. */
  readonly migrationsDir: string;
  /** @default 1000 */
  readonly customers?: number;
  /** @default 100_000 */
  readonly orders?: number;
  /** Progress lines; never given a password. @default silent */
  readonly log?: (line: string) => void;
}

export interface SeededShop {
  /** The app role's URL on the shop database. Holds the password: pass it on, never print it. */
  readonly appUrl: string;
  /** Rows inserted: customers plus orders. */
  readonly rows: number;
}

/** One order in this many is free (`amount_cents = 0`). */
const ZERO_AMOUNT_EVERY = 100;
/** The schema version the shop starts at; the demo's upgrade takes it further. */
const SEED_VERSION = '2';

/**
 * Builds the example shop from nothing: drops and creates `database`, applies the example migrations
 * up to version 2 with safeshift's engine, creates the app's login role with just the privileges
 * the API needs, and bulk-inserts customers and orders in one statement each (100,000 orders take
 * well under a second or two).
 *
 * Exactly one order in 100 has `amount_cents = 0` on purpose: the demo later tries a migration
 * adding `CHECK (amount_cents > 0)`, which must fail on this real data so the restore path runs.
 *
 * @example
 * ```ts
 * const { appUrl, rows } = await seedShop({
 *   serverUrl: 'postgres://postgres:pw@127.0.0.1:5432/postgres', database: 'shop',
 *   appRole: 'shop_app', appPassword: randomBytes(16).toString('hex'), migrationsDir: 'examples/migrations',
 * });
 * const api = await startShopApi({ databaseUrl: appUrl });
 * ```
 */
export async function seedShop(opts: SeedShopOptions): Promise<SeededShop> {
  const database = checkIdentifierOption(opts.database, 'database');
  const role = checkIdentifierOption(opts.appRole, 'appRole');
  if (opts.appPassword.length === 0) throw new OptionError('appPassword must not be empty');
  const customers = count(opts.customers ?? 1000, 'customers', 1);
  const orders = count(opts.orders ?? 100_000, 'orders', 0);
  const log = opts.log ?? (() => {});

  const admin = await connectPg(opts.serverUrl, { applicationName: 'shop seed' });
  try {
    // WITH (FORCE) ends sessions left on an old copy (an API still running from a previous demo).
    await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
    await admin.query(`create database ${escapeIdentifier(database)}`);
    await ensureRole(admin, role, opts.appPassword);
    await admin.query(`grant connect on database ${escapeIdentifier(database)} to ${escapeIdentifier(role)}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  log(`created database ${database} and role ${role}`);

  const client = await connectPg(withDatabase(opts.serverUrl, database), { applicationName: 'shop seed' });
  try {
    const engineLog: Logger = { info: (m) => log(m), warn: (m) => log(`warning: ${m}`) };
    const result = await migrate({ client, dir: opts.migrationsDir, target: requireVersion(SEED_VERSION, 'target'), log: engineLog });
    log(`migrated to version ${result.toVersion ?? 'none'}`);
    await grantAppPrivileges(client, role);
    const began = Date.now();
    const rows = await insertRows(client, customers, orders);
    log(`inserted ${customers} customers and ${orders} orders in ${Date.now() - began} ms`);
    const appUrl = roleUrl(withDatabase(opts.serverUrl, database), role, opts.appPassword);
    log(`app URL ${redactUrl(appUrl)}`);
    return { appUrl, rows };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the role, or resets the password and LOGIN of one left by an earlier run. */
async function ensureRole(admin: pg.Client, role: string, password: string): Promise<void> {
  // CREATE/ALTER ROLE take no parameters, so the password goes in as a quoted literal; the
  // statement text never reaches a log of ours.
  const settings = `login password ${escapeLiteral(password)}`;
  const { rowCount } = await admin.query('select 1 from pg_roles where rolname = $1', [role]);
  if (rowCount === 0) {
    try {
      await admin.query(`create role ${escapeIdentifier(role)} ${settings}`);
      return;
    } catch (error) {
      // Another seed created it between our look and our CREATE: fall through and update it.
      if (sqlState(error) !== SqlStates.duplicateObject) throw error;
    }
  }
  await admin.query(`alter role ${escapeIdentifier(role)} ${settings}`);
}

/**
 * Data privileges only: the app never owns or alters the schema. Default privileges cover tables the
 * later migrations create (they run as the same owner as this seed), so an upgraded app keeps working.
 */
async function grantAppPrivileges(client: pg.Client, role: string): Promise<void> {
  const r = escapeIdentifier(role);
  await client.query(`grant usage on schema public to ${r}`);
  await client.query(`grant select, insert, update, delete on all tables in schema public to ${r}`);
  await client.query(`grant usage, select on all sequences in schema public to ${r}`);
  await client.query(`alter default privileges in schema public grant select, insert, update, delete on tables to ${r}`);
  await client.query(`alter default privileges in schema public grant usage, select on sequences to ${r}`);
  // The app may read the migration history (to ask whether its version is compatible), never change it.
  const history = `${escapeIdentifier(DEFAULT_HISTORY.schema)}.${escapeIdentifier(DEFAULT_HISTORY.table)}`;
  await client.query(`revoke insert, update, delete on ${history} from ${r}`);
}

/** Set-based inserts: one statement per table, so the cost is Postgres's, not round trips. */
async function insertRows(client: pg.Client, customers: number, orders: number): Promise<number> {
  await client.query('begin');
  try {
    const c = await client.query(
      `insert into customers (email, name)
       select 'customer' || g || '@example.shop', 'Customer ' || g from generate_series(1, $1::int) g`,
      [customers],
    );
    // Customers are spread over the orders and amounts vary deterministically (a seed is
    // reproducible); every ZERO_AMOUNT_EVERY-th order is free. g is bigint: g * 104729 overflows int.
    const o = await client.query(
      `with c as (select array_agg(id order by id) as ids from customers)
       insert into orders (customer_id, amount_cents, created_at)
       select c.ids[(1 + (g * 7919) % cardinality(c.ids))::int],
              case when g % $2::int = 0 then 0 else (100 + (g * 104729) % 49900)::int end,
              now() - make_interval(secs => (($1::bigint - g) * 30)::float8)
         from c, generate_series(1, $1::bigint) g`,
      [orders, ZERO_AMOUNT_EVERY],
    );
    await client.query('commit');
    // Fresh statistics, so the demo's first queries and migrations get sensible plans.
    await client.query('analyze customers, orders');
    return (c.rowCount ?? 0) + (o.rowCount ?? 0);
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/** The same server and database, signed in as the app role. */
function roleUrl(databaseUrl: string, role: string, password: string): string {
  const url = new URL(databaseUrl);
  // encodeURIComponent first: the URL setters leave '%' alone, so a password holding one survives.
  url.username = encodeURIComponent(role);
  url.password = encodeURIComponent(password);
  url.searchParams.delete('user');
  url.searchParams.delete('password');
  return url.toString();
}

function count(value: number, option: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new OptionError(`${option} must be a whole number of at least ${min}, not ${value}`);
  return value;
}
