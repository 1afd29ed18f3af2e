import type pg from 'pg';

/**
 * A fingerprint of everything a migration could change in the user's schemas: every relation with
 * its columns, every index and constraint, and a checksum of every table's rows. Two equal
 * fingerprints mean "exactly as before".
 */
export async function databaseFingerprint(client: pg.Client): Promise<Record<string, unknown>> {
  const { rows: relations } = await client.query<{ schema: string; name: string; kind: string; columns: string | null }>(`
    select n.nspname as schema, c.relname as name, c.relkind::text as kind,
           (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end
                              || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' order by a.attnum)
              from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg_temp%'
     order by 1, 2`);
  const { rows: constraints } = await client.query(`
    select conrelid::regclass::text as rel, conname, pg_get_constraintdef(oid) as def from pg_constraint
     where connamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) order by 1, 2`);
  const { rows: indexes } = await client.query(`
    select schemaname, indexname, indexdef from pg_indexes where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2`);
  const data: Record<string, string> = {};
  for (const r of relations) {
    if (r.kind !== 'r') continue;
    const q = `${client.escapeIdentifier(r.schema)}.${client.escapeIdentifier(r.name)}`;
    const { rows } = await client.query<{ sum: string | null; n: string }>(
      `select md5(coalesce(string_agg(md5(t::text), ',' order by md5(t::text)), '')) as sum, count(*)::text as n from ${q} t`,
    );
    data[`${r.schema}.${r.name}`] = `${rows[0]?.n}:${rows[0]?.sum}`;
  }
  return { relations, constraints, indexes, data };
}
