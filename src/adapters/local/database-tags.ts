import type pg from 'pg';
import { SafeshiftError } from '../../core/errors.ts';
import { escapeIdentifier as ident, escapeLiteral } from '../../core/identifiers.ts';
import type { SafeshiftTags } from '../../ports.ts';
import type { DatabaseFace } from './database-face.ts';

// How the local fleet marks what it made: JSON in `COMMENT ON DATABASE`, which follows a database
// through renames; nothing without it is ever changed or dropped.

/** The JSON safeshift writes into `COMMENT ON DATABASE`: it follows the database through renames. */
export interface TagComment {
  readonly safeshift: SafeshiftTags & { readonly name: string; readonly resource: 'snapshot' | 'database' };
  /** Snapshots: production's owner, ACL and settings at snapshot time. */
  readonly production?: DatabaseFace;
  /** Clones: false until owner, ACL and settings are copied, so a retry after a crash finishes the job. */
  readonly configured?: boolean;
  readonly snapshotId?: string;
  /** Retired databases: the comment production had before safeshift's tags replaced it. */
  readonly priorComment?: string | null;
}

/** The catalog row of a database, with its comment (where safeshift's tags live). */
export interface DatabaseRow {
  readonly datname: string;
  readonly datistemplate: boolean;
  readonly datallowconn: boolean;
  readonly comment: string | null;
}

const KINDS = new Set(['pre-upgrade', 'safety', 'rehearsal', 'clone', 'retired']);

/** Just the port's three tags, whatever else the object carries. */
export function pickTags(tags: SafeshiftTags): SafeshiftTags {
  return { runId: tags.runId, database: tags.database, kind: tags.kind };
}

/** The database called `name`, or undefined. */
export async function findDatabase(c: pg.Client, name: string): Promise<DatabaseRow | undefined> {
  const { rows } = await c.query<DatabaseRow>(
    `select datname, datistemplate, datallowconn, shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
    [name],
  );
  return rows[0];
}

/** safeshift's tags in a database comment, or undefined when the comment is anything else. */
export function parseTags(comment: string | null): TagComment | undefined {
  if (!comment?.startsWith('{')) return undefined;
  try {
    // Anyone who may comment on the database may have written it: every field is checked.
    const value = JSON.parse(comment) as { readonly safeshift?: Partial<TagComment['safeshift']> | null };
    const t = value.safeshift;
    const valid =
      t &&
      typeof t.runId === 'string' &&
      typeof t.database === 'string' &&
      t.kind !== undefined &&
      KINDS.has(t.kind) &&
      typeof t.name === 'string' &&
      (t.resource === 'snapshot' || t.resource === 'database');
    return valid ? (value as TagComment) : undefined;
  } catch {
    return undefined;
  }
}

/** The tags of a database safeshift made as `resource`, or NOT_SAFESHIFT_RESOURCE. */
export function ours(row: DatabaseRow, resource: 'snapshot' | 'database'): TagComment {
  const tags = parseTags(row.comment);
  if (!tags) {
    throw new SafeshiftError(
      'NOT_SAFESHIFT_RESOURCE',
      `database "${row.datname}" exists but has no safeshift tags; safeshift only changes or deletes what it made`,
    );
  }
  if (tags.safeshift.resource !== resource) {
    throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `"${row.datname}" is a safeshift ${tags.safeshift.resource}, not a ${resource}`);
  }
  return tags;
}

/**
 * Lets a retried create reuse what the first attempt made, and nothing else: the existing database must
 * carry this run's tags (as the AWS fleet requires, with the same codes).
 */
export function assertReusable(row: DatabaseRow, resource: 'snapshot' | 'database', want: SafeshiftTags): TagComment {
  const got = parseTags(row.comment);
  const t = got?.safeshift;
  if (got && t?.resource === resource && t.runId === want.runId && t.database === want.database && t.kind === want.kind) return got;
  if (t && resource === 'snapshot' && t.database !== want.database) {
    throw new SafeshiftError(
      'SNAPSHOT_FOREIGN',
      `snapshot "${row.datname}" already exists but was taken of database "${t.database}", not "${want.database}"; choose another snapshot id`,
    );
  }
  const whose = t ? `safeshift run ${t.runId} (${t.kind} ${t.resource} of ${t.database})` : 'something other than safeshift (it has no safeshift tags)';
  throw new SafeshiftError(
    'ALREADY_EXISTS',
    `database "${row.datname}" already exists and belongs to ${whose}, not to run ${want.runId}; ` +
      `it was left alone. Delete it or start the run with another id.`,
  );
}

/** Tags a clone as ours; `configured: false` until production's face is on it, so a retry finishes the job. */
export async function tagClone(c: pg.Client, cloneId: string, tags: SafeshiftTags, snapshotId: string, configured: boolean): Promise<void> {
  const comment: TagComment = { safeshift: { ...pickTags(tags), name: cloneId, resource: 'database' }, configured, snapshotId };
  await c.query(`comment on database ${ident(cloneId)} is ${escapeLiteral(JSON.stringify(comment))}`);
}

/** Drops a database only while it carries no comment: one this operation has just copied and not yet tagged. */
export async function dropUntagged(c: pg.Client, name: string): Promise<boolean> {
  const row = await findDatabase(c, name);
  if (row?.comment !== null) return false;
  await c.query(`drop database if exists ${ident(name)} with (force)`);
  return true;
}
