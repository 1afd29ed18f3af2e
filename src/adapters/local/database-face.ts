import type pg from 'pg';
import { escapeIdentifier as ident, escapeLiteral } from '../../core/identifiers.ts';
import { SafeshiftError } from '../../core/errors.ts';

/** Settings whose values are lists of quoted identifiers; the same list pg_dump keeps. */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** One `GRANT` as `aclexplode` reports it, grouped: who granted what to whom (`null` = PUBLIC). */
interface AclGrant {
  readonly grantor: string;
  readonly grantee: string | null;
  readonly privileges: string[];
  readonly grantable: boolean;
}

/**
 * What a database shows its users beyond its contents — owner, privileges, connection limit and
 * settings — which `CREATE DATABASE … TEMPLATE` does not copy. A snapshot records production's, so a
 * clone made from it can serve the app as production did.
 */
export interface DatabaseFace {
  readonly owner: string;
  /** `null`: the built-in default privileges (datacl is NULL). */
  readonly acl: AclGrant[] | null;
  readonly connectionLimit: number;
  /** `ALTER DATABASE … SET` (role `null`) and `ALTER ROLE … IN DATABASE … SET`, as `name=value`. */
  readonly settings: { readonly role: string | null; readonly config: string[] }[];
}

/**
 * Reads a database's face. Settings named `ignoreSetting` (safeshift's own marker) are left out.
 * Throws DATABASE_NOT_FOUND when there is no such database.
 */
export async function readFace(c: pg.Client, database: string, ignoreSetting: string): Promise<DatabaseFace> {
  const { rows } = await c.query<{
    owner: string;
    connection_limit: number;
    acl: { grantor: string; grantee: string | null; privilege: string; grantable: boolean }[] | null;
    settings: DatabaseFace['settings'];
  }>(
    `select pg_get_userbyid(d.datdba) as owner, d.datconnlimit as connection_limit,
            case when d.datacl is null then null else coalesce((
              select json_agg(json_build_object('grantor', pg_get_userbyid(a.grantor),
                       'grantee', case when a.grantee = 0 then null else pg_get_userbyid(a.grantee) end,
                       'privilege', a.privilege_type, 'grantable', a.is_grantable) order by u.n)
                from unnest(d.datacl) with ordinality u(item, n), aclexplode(array[u.item]) a), '[]') end as acl,
            coalesce((select json_agg(json_build_object('role', case when s.setrole = 0 then null else pg_get_userbyid(s.setrole) end,
                       'config', array(select cfg from unnest(s.setconfig) cfg where not starts_with(cfg, $2 || '='))))
                from pg_db_role_setting s where s.setdatabase = d.oid), '[]') as settings
       from pg_database d where d.datname = $1`,
    [database, ignoreSetting],
  );
  const row = rows[0];
  if (!row) throw new SafeshiftError('DATABASE_NOT_FOUND', `database "${database}" does not exist on the server`);
  // aclexplode gives one row per privilege; one GRANT per aclitem keeps the array's order and grantors.
  const acl: AclGrant[] = [];
  for (const g of row.acl ?? []) {
    const last = acl[acl.length - 1];
    if (last?.grantor === g.grantor && last.grantee === g.grantee && last.grantable === g.grantable) last.privileges.push(g.privilege);
    else acl.push({ grantor: g.grantor, grantee: g.grantee, grantable: g.grantable, privileges: [g.privilege] });
  }
  return {
    owner: row.owner,
    connectionLimit: row.connection_limit,
    acl: row.acl === null ? null : acl,
    settings: row.settings.filter((s) => s.config.length > 0),
  };
}

/** Gives a clone production's owner, privileges and settings. Idempotent: it first clears what a retry would find. */
export async function applyFace(c: pg.Client, database: string, face: DatabaseFace): Promise<void> {
  const db = ident(database);
  await c.query(`alter database ${db} owner to ${ident(face.owner)}`);
  // A snapshot's face is read back from the JSON in its comment, field by field unchecked: only a number may reach the SQL.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- the face may come from that JSON
  await c.query(`alter database ${db} with connection limit ${Number(face.connectionLimit)}`);
  if (face.acl) {
    // Empty the ACL (as the owner, cascading to grants made by others), then grant exactly what production had.
    const { rows } = await c.query<{ grantee: string | null }>(
      `select distinct case when a.grantee = 0 then null else pg_get_userbyid(a.grantee) end as grantee
         from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a where d.datname = $1`,
      [database],
    );
    for (const { grantee } of rows) await c.query(`revoke all on database ${db} from ${grantee === null ? 'public' : ident(grantee)} cascade`);
    const ordered = [...face.acl.filter((g) => g.grantor === face.owner), ...face.acl.filter((g) => g.grantor !== face.owner)];
    for (const g of ordered) {
      // A grant made by another role is made as that role, so the ACL names the same grantor.
      if (g.grantor !== face.owner) await c.query(`set local role ${ident(g.grantor)}`);
      await c.query(
        `grant ${g.privileges.join(', ')} on database ${db} to ${g.grantee === null ? 'public' : ident(g.grantee)}${g.grantable ? ' with grant option' : ''}`,
      );
      if (g.grantor !== face.owner) await c.query('reset role');
    }
  }
  await c.query(`alter database ${db} reset all`);
  const { rows: roleRows } = await c.query<{ role: string }>(
    `select pg_get_userbyid(s.setrole) as role from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = $1 and s.setrole <> 0`,
    [database],
  );
  for (const { role } of roleRows) await c.query(`alter role ${ident(role)} in database ${db} reset all`);
  for (const { role, config } of face.settings) {
    const target = role === null ? `database ${db}` : `role ${ident(role)} in database ${db}`;
    for (const entry of config) {
      const eq = entry.indexOf('=');
      const name = entry.slice(0, eq);
      const value = entry.slice(eq + 1);
      const values = LIST_SETTINGS.has(name.toLowerCase()) ? splitList(value) : [value];
      await c.query(`alter ${target} set ${name.split('.').map(ident).join('.')} to ${values.map(escapeLiteral).join(', ')}`);
    }
  }
}

/**
 * Splits a stored list setting (`"$user", public`) into its elements, unquoted: given back as literals,
 * the server quotes each again as it did at first.
 */
function splitList(value: string): string[] {
  const items: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,]*?))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    items.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] ?? ''));
  }
  return items.length > 0 ? items : [''];
}
