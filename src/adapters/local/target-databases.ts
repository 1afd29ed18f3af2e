import type pg from 'pg';
import { findDatabase, parseTags } from './database-tags.ts';

/**
 * Why a database on a local server may not be upgraded or restored (see Connector.targetProblem):
 * `postgres`, a template, or a snapshot or clone safeshift made for another database. A database
 * swapped in for production keeps its tags and its production's name, and is production.
 *
 * @example
 * ```ts
 * await targetProblem(admin, 'template1') // '"template1" is a template database: …'
 * ```
 */
export async function targetProblem(admin: pg.Client, databaseId: string): Promise<string | undefined> {
  if (databaseId === 'postgres') return '"postgres" is the server\'s maintenance database, which tools and safeshift itself connect to';
  const found = await findDatabase(admin, databaseId);
  const tags = found ? parseTags(found.comment) : undefined;
  // Before the template check: safeshift's snapshots are templates too, and the better answer is whose.
  if (tags && tags.safeshift.database !== databaseId) {
    return (
      `"${databaseId}" is a ${tags.safeshift.kind} safeshift made for "${tags.safeshift.database}"; ` + `upgrade or restore "${tags.safeshift.database}" itself`
    );
  }
  const { rows } = await admin.query<{ is_template: boolean }>('select datistemplate as is_template from pg_database where datname = $1', [databaseId]);
  if (rows[0]?.is_template) return `"${databaseId}" is a template database: every new database is copied from it`;
  return undefined;
}
