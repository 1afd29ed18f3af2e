import type pg from 'pg';

/**
 * Checks that all `count` generated migrations really ran (tables, indexes and the last table's rows),
 * so a contender that skipped work cannot post a good time.
 */
export async function verifyApplied(client: pg.Client, count: number): Promise<void> {
  const { rows } = await client.query<{ tables: number; indexes: number }>(
    `select (select count(*)::int from pg_catalog.pg_tables where schemaname = 'public' and tablename ~ '^t[0-9]+$') as tables,
            (select count(*)::int from pg_catalog.pg_indexes where schemaname = 'public' and indexname ~ '^t[0-9]+_name_idx$') as indexes`,
  );
  const found = rows[0] ?? { tables: 0, indexes: 0 };
  if (found.tables !== count || found.indexes !== count) {
    throw new Error(`expected ${count} tables and ${count} indexes, found ${found.tables} and ${found.indexes}`);
  }
  const last = await client.query<{ n: number }>(`select count(*)::int as n from t${count}`);
  if (last.rows[0]?.n !== 3) throw new Error(`t${count} holds ${last.rows[0]?.n} rows, expected 3`);
}
