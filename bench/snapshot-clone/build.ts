import type pg from 'pg';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';

/**
 * Bytes one row of each table adds to the database, tables and indexes together (measured on
 * PostgreSQL 15 and 18: 1,000,000 rows each give ~322 MB). Only used to choose the row count; the
 * report gives the size the database really has.
 */
const BYTES_PER_ROW_PAIR = 322;
/** An empty database's own catalog. */
const EMPTY_DATABASE_BYTES = 7_500_000;

/** What a copy of the database must hold to count: exact row counts and the index count. */
export interface Fingerprint {
  readonly rows: Readonly<Record<string, number>>;
  readonly indexes: number;
}

/** Two tables, each loaded and indexed on its own session, so the two CPUs a small machine has both work. */
const TABLES: readonly { readonly name: string; readonly sql: (rows: number) => string[] }[] = [
  {
    name: 'orders',
    sql: (rows) => [
      `create table orders (id bigint primary key, customer_id int not null, amount_cents int not null, ` +
        `status text not null, created_at timestamptz not null, note text)`,
      `insert into orders
       select g, (g * 7919) % 100000, (g * 104729) % 49900, (array['new','paid','shipped','cancelled'])[1 + g % 4],
              '2020-01-01'::timestamptz + g * interval '1 second', md5(g::text)
         from generate_series(1::bigint, ${rows}) g`,
      'create index orders_customer_id_idx on orders (customer_id)',
      'create index orders_created_at_idx on orders (created_at)',
    ],
  },
  {
    name: 'events',
    sql: (rows) => [
      `create table events (id bigint primary key, order_id bigint not null, kind text not null, payload jsonb not null, at timestamptz not null)`,
      `insert into events
       select g, g / 3, 'k' || (g % 7), jsonb_build_object('n', g, 'tag', md5((g * 3)::text)),
              '2020-01-01'::timestamptz + g * interval '1 second'
         from generate_series(1::bigint, ${rows}) g`,
      'create index events_order_id_idx on events (order_id)',
    ],
  },
];

/**
 * Creates `database` (dropped first) and fills it to about `targetBytes` with generate_series rows
 * in two indexed tables, then VACUUM (FREEZE, ANALYZE)s it, so every contender copies a settled
 * database (no hint bits left to set on first read) and returns its fingerprint and real size.
 *
 * @example
 * ```ts
 * const { bytes } = await buildDatabase(serverUrl, 'bench_1gb', 1024 ** 3);
 * ```
 */
export async function buildDatabase(
  serverUrl: string,
  database: string,
  targetBytes: number,
): Promise<{ bytes: number; rowsPerTable: number; fingerprint: Fingerprint }> {
  const rowsPerTable = Math.max(10_000, Math.round((targetBytes - EMPTY_DATABASE_BYTES) / BYTES_PER_ROW_PAIR));
  const admin = await connectPg(serverUrl);
  try {
    await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
    await admin.query(`create database ${escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, database);
  await Promise.all(
    TABLES.map(async (t) => {
      const c = await connectPg(url);
      try {
        // Only this loading session: index builds sort in memory instead of spilling to disk.
        await c.query(`set maintenance_work_mem = '256MB'`);
        for (const statement of t.sql(rowsPerTable)) await c.query(statement);
      } finally {
        await c.end();
      }
    }),
  );
  const c = await connectPg(url);
  try {
    await c.query('vacuum (freeze, analyze)');
    const { rows } = await c.query<{ bytes: string }>('select pg_database_size(current_database())::text as bytes');
    return { bytes: Number(rows[0]?.bytes), rowsPerTable, fingerprint: await fingerprint(c) };
  } finally {
    await c.end();
  }
}

/** Exact row count of every table in `public` and how many indexes there are. */
export async function fingerprint(c: pg.Client): Promise<Fingerprint> {
  const { rows: tables } = await c.query<{ t: string }>(`select tablename as t from pg_tables where schemaname = 'public' order by 1`);
  const rows: Record<string, number> = {};
  for (const { t } of tables) {
    const { rows: n } = await c.query<{ n: string }>(`select count(*)::text as n from ${escapeIdentifier(t)}`);
    rows[t] = Number(n[0]?.n);
  }
  const { rows: idx } = await c.query<{ n: number }>(`select count(*)::int as n from pg_indexes where schemaname = 'public'`);
  return { rows, indexes: idx[0]?.n ?? 0 };
}

/** Throws unless a copy holds exactly what the source did. */
export function sameFingerprint(what: string, got: Fingerprint, want: Fingerprint): void {
  const a = JSON.stringify(got);
  const b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what} does not hold the source's data: ${a}, expected ${b}`);
}
