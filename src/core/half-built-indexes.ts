import type { SqlClient } from '../ports.ts';
import { escapeIdentifier } from './identifiers.ts';
import { nodeAs } from './lint/nodes.ts';
import type { SqlStatement } from './statements.ts';

/** The database's indexes by oid, each with its name and whether it is valid: what a statement outside a transaction may leave half-built. */
export type IndexValidity = ReadonlyMap<string, { readonly name: string; readonly valid: boolean }>;

/** Reads every index's name and validity (one catalog query; pg_index is small). */
export async function indexValidity(client: SqlClient): Promise<IndexValidity> {
  const { rows } = await client.query<{ oid: string; name: string; valid: boolean }>(
    `select i.indexrelid::text as oid, format('%I.%I', n.nspname, c.relname) as name, i.indisvalid as valid
       from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace`,
  );
  return new Map(rows.map((r) => [r.oid, { name: r.name, valid: r.valid }]));
}

/** What a failed statement outside a transaction left of its indexes, and what of it could be undone. */
export interface HalfBuilt {
  /** Indexes it created and that were dropped again: a build stopped half-way, or one done whose answer was lost. */
  readonly dropped: readonly string[];
  /** What it changed that is not undone so: an index left invalid or gone (a DROP or REINDEX CONCURRENTLY), a drop that failed. */
  readonly left: readonly string[];
}

/**
 * After a statement outside any transaction failed: Postgres does not undo a CREATE INDEX (or REINDEX)
 * CONCURRENTLY that stopped half-way, it leaves the new index behind, invalid. Those are dropped, and
 * so is a new valid index of a CREATE INDEX (a build done whose answer was lost), so that the database
 * is as it was before the statement. What cannot be undone so (an index a DROP INDEX CONCURRENTLY left
 * invalid, an index gone, a REINDEX's valid new index, a drop that fails) is returned, for the failure to name.
 */
export async function undoHalfBuilt(client: SqlClient, before: IndexValidity, st: SqlStatement): Promise<HalfBuilt> {
  const dropped: string[] = [];
  const left: string[] = [];
  const now = await indexValidity(client);
  const builds = nodeAs(st.node, 'IndexStmt') !== undefined;
  for (const [oid, index] of now) {
    const was = before.get(oid);
    if (was) {
      if (was.valid && !index.valid) left.push(`${index.name} (now invalid)`);
      continue;
    }
    if (index.valid && !builds) {
      left.push(`${index.name} (new)`);
      continue;
    }
    try {
      await client.query(`drop index concurrently if exists ${index.name}`);
      dropped.push(index.name);
    } catch {
      left.push(`${index.name} (new, ${index.valid ? 'valid' : 'invalid'}, could not be dropped)`);
    }
  }
  for (const [oid, index] of before) if (!now.has(oid)) left.push(`${index.name} (gone)`);
  return { dropped, left };
}

/**
 * The index a `CREATE INDEX CONCURRENTLY IF NOT EXISTS name` that succeeded found already there and
 * invalid (left by an earlier build that failed): Postgres skips the build, so the statement
 * succeeds without making a usable index. Undefined when the statement is not such a build or its
 * index is valid.
 */
export async function skippedInvalidIndex(client: SqlClient, st: SqlStatement): Promise<string | undefined> {
  const index = nodeAs(st.node, 'IndexStmt');
  if (!index?.concurrent || !index.if_not_exists || !index.idxname) return undefined;
  const schema = index.relation?.schemaname;
  const table = index.relation?.relname;
  if (!table) return undefined;
  const qualified = `${schema ? `${escapeIdentifier(schema)}.` : ''}${escapeIdentifier(table)}`;
  const { rows } = await client.query<{ valid: boolean }>(
    `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname = $1 and i.indrelid = to_regclass($2)`,
    [index.idxname, qualified],
  );
  return rows[0]?.valid === false ? `${schema ? `${escapeIdentifier(schema)}.` : ''}${escapeIdentifier(index.idxname)}` : undefined;
}
