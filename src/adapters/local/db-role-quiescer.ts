import type pg from 'pg';
import { inTransaction } from '../../core/transaction.ts';
import { endSessions } from '../../core/end-sessions.ts';
import { SafeshiftError } from '../../core/errors.ts';
import { checkIdentifierOption, escapeIdentifier as ident } from '../../core/identifiers.ts';
import type { Json, QuiesceHold, Quiescer } from '../../ports.ts';
import { connectPg } from './pg-connection.ts';

/** One explicit CONNECT grant to the role in the database's ACL. */
interface ConnectGrant {
  readonly grantor: string;
  readonly grantable: boolean;
}

/**
 * What `capture` records (and the ledger keeps): the role's login right and connection limit, and
 * its explicit CONNECT grants on the database. An empty list means it connects through PUBLIC or
 * ownership, which quiescing leaves alone (NOLOGIN already shuts it out).
 */
export interface DbRolePrior {
  readonly kind: 'db-role';
  readonly role: string;
  readonly canLogin: boolean;
  readonly connectionLimit: number;
  readonly connectGrants: ConnectGrant[];
}

interface RoleState {
  readonly can_login: boolean;
  readonly connection_limit: number;
  readonly owner: string | null;
  readonly grants: ConnectGrant[];
  readonly is_self: boolean;
  readonly is_super: boolean;
}

/**
 * Quiesces an app that reaches the database as one role (spec `db-role:ROLE`): the role may no longer
 * log in (`NOLOGIN`) nor connect to the database (its explicit CONNECT grants revoked), and its
 * sessions on the database are ended. `resume` puts back exactly what `capture` recorded, on whatever
 * database has the name by then (after a swap, the clone that replaced production). Every method is
 * idempotent. NOLOGIN is cluster-wide: the role's sessions on other databases stay, new ones cannot start.
 *
 * @example
 * ```ts
 * const q = new DbRoleQuiescer(serverUrl, 'shop', 'shop_app');
 * const prior = await q.capture();   // { kind: 'db-role', role: 'shop_app', canLogin: true, ... }
 * await q.quiesce();
 * await q.resume(prior);
 * ```
 */
export class DbRoleQuiescer implements Quiescer {
  readonly id: string;

  constructor(
    private readonly serverUrl: string,
    private readonly databaseId: string,
    private readonly role: string,
  ) {
    checkIdentifierOption(role, 'db-role');
    checkIdentifierOption(databaseId, 'database');
    this.id = `db-role:${role}`;
  }

  /**
   * Refuses what cannot be quiesced soundly, changing nothing: a role that does not exist, the role
   * safeshift connects as, a superuser (it bypasses CONNECT and may undo NOLOGIN from a session it
   * keeps elsewhere). Whether safeshift may lock the role out is tried in a transaction rolled back.
   */
  async check(): Promise<void> {
    await this.admin('check that it can quiesce', async (c) => {
      const state = await this.read(c);
      if (state.is_super) {
        throw new SafeshiftError(
          'BAD_OPTION',
          `${this.id}: "${this.role}" is a superuser; a superuser ignores CONNECT rights and can give itself LOGIN back, ` +
            `so locking it out cannot be relied on. Give the application a role of its own that is not a superuser`,
        );
      }
      try {
        await c.query('begin');
        await this.lockOut(c, state);
      } catch (error) {
        throw new SafeshiftError(
          'QUIESCE_FAILED',
          `${this.id}: safeshift's role may not lock "${this.role}" out of ` +
            `"${this.databaseId}" (${error instanceof Error ? error.message : String(error)}); ` +
            `connect as a role with CREATEROLE and ADMIN OPTION on it, or as the database owner`,
          { cause: error },
        );
      } finally {
        await c.query('rollback').catch(() => undefined);
      }
    });
  }

  /** Held while the role cannot log in, has no CONNECT grant back, and has no session on the database. */
  async stillQuiesced(): Promise<QuiesceHold> {
    return this.admin('check the rights of', async (c) => {
      const state = await this.read(c);
      const { rows } = await c.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where usename = $1 and datname = $2', [
        this.role,
        this.databaseId,
      ]);
      const sessions = rows[0]?.n ?? 0;
      const seen = [
        state.can_login ? `role ${this.role} can log in` : undefined,
        state.grants.length > 0 ? `role ${this.role} has CONNECT on ${this.databaseId} again` : undefined,
        sessions > 0 ? `role ${this.role} has ${sessions} session(s) on ${this.databaseId}` : undefined,
      ].filter((x): x is string => x !== undefined);
      return { holds: seen.length === 0, evidence: seen.join('; ') || `role ${this.role} is NOLOGIN with no session on ${this.databaseId}` };
    });
  }

  async capture(): Promise<Json> {
    return this.admin('read the rights of', async (c) => {
      const state = await this.read(c);
      // A plain object literal, so that it is Json (an interface has no index signature); it is still checked against DbRolePrior.
      const grants = state.grants.map((g) => ({ grantor: g.grantor, grantable: g.grantable }));
      const prior = {
        kind: 'db-role',
        role: this.role,
        canLogin: state.can_login,
        connectionLimit: state.connection_limit,
        connectGrants: grants,
      } satisfies DbRolePrior;
      return prior;
    });
  }

  async quiesce(): Promise<void> {
    await this.admin('quiesce', async (c) => {
      const state = await this.read(c);
      await inTransaction(c, () => this.lockOut(c, state));
      // After NOLOGIN has committed no new session can start, so ending the present ones is final.
      await endSessions(c, 'usename = $1 and datname = $2', [this.role, this.databaseId]);
    });
  }

  async resume(prior: Json): Promise<void> {
    const wanted = parsePrior(prior, this.role);
    await this.admin('resume', async (c) => {
      const state = await this.read(c);
      const db = ident(this.databaseId);
      await inTransaction(c, async () => {
        await c.query(`alter role ${ident(this.role)} ${wanted.canLogin ? 'login' : 'nologin'} connection limit ${wanted.connectionLimit}`);
        for (const grant of state.grants) {
          const keep = wanted.connectGrants.find((w) => w.grantor === grant.grantor);
          if (!keep) await this.asGrantor(c, state, grant, `revoke connect on database ${db} from ${ident(this.role)}`);
          else if (grant.grantable && !keep.grantable)
            await this.asGrantor(c, state, grant, `revoke grant option for connect on database ${db} from ${ident(this.role)}`);
        }
        for (const grant of wanted.connectGrants) {
          const has = state.grants.find((g) => g.grantor === grant.grantor);
          if (!has || (grant.grantable && !has.grantable)) {
            await this.asGrantor(c, state, grant, `grant connect on database ${db} to ${ident(this.role)}${grant.grantable ? ' with grant option' : ''}`);
          }
        }
      });
    });
  }

  /** NOLOGIN and the CONNECT grants revoked, inside the caller's transaction. */
  private async lockOut(c: pg.Client, state: RoleState): Promise<void> {
    await c.query(`alter role ${ident(this.role)} nologin`);
    for (const grant of state.grants) await this.asGrantor(c, state, grant, `revoke connect on database ${ident(this.databaseId)} from ${ident(this.role)}`);
  }

  /** The role's state now; BAD_OPTION when it does not exist, QUIESCE_FAILED when the database does not. */
  private async read(c: pg.Client): Promise<RoleState> {
    const { rows } = await c.query<RoleState>(
      `select r.rolcanlogin as can_login, r.rolconnlimit as connection_limit, r.rolname = session_user as is_self, r.rolsuper as is_super,
              (select pg_get_userbyid(datdba) from pg_database where datname = $2) as owner,
              coalesce((select json_agg(json_build_object('grantor', pg_get_userbyid(a.grantor), 'grantable', a.is_grantable) order by u.n)
                 from pg_database d, unnest(d.datacl) with ordinality u(item, n), aclexplode(array[u.item]) a
                where d.datname = $2 and a.grantee = r.oid and a.privilege_type = 'CONNECT'), '[]') as grants
         from pg_roles r where r.rolname = $1`,
      [this.role, this.databaseId],
    );
    const state = rows[0];
    if (!state)
      throw new SafeshiftError('BAD_OPTION', `${this.id}: role "${this.role}" does not exist on the server; give the role the application logs in as`);
    // Locking out the role safeshift itself logs in as would also lock out the resume.
    if (state.is_self)
      throw new SafeshiftError(
        'BAD_OPTION',
        `${this.id}: "${this.role}" is the role safeshift connects as; quiescing it would lock safeshift out too. Give the application's own role`,
      );
    if (state.owner === null) throw new SafeshiftError('QUIESCE_FAILED', `${this.id}: database "${this.databaseId}" does not exist on the server`);
    return state;
  }

  /**
   * Runs a GRANT/REVOKE as the role that made the grant: a superuser acts as the database's owner,
   * which would neither remove nor recreate a grant made by someone else.
   */
  private async asGrantor(c: pg.Client, state: RoleState, grant: ConnectGrant, sql: string): Promise<void> {
    const other = grant.grantor !== state.owner;
    if (other) await c.query(`set local role ${ident(grant.grantor)}`);
    await c.query(sql);
    if (other) await c.query('reset role');
  }

  private async admin<T>(what: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = await connectPg(this.serverUrl, { applicationName: 'safeshift quiescer' });
    try {
      return await fn(client);
    } catch (error) {
      if (error instanceof SafeshiftError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new SafeshiftError('QUIESCE_FAILED', `${this.id}: could not ${what} role "${this.role}" on database "${this.databaseId}": ${message}`, {
        cause: error,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function parsePrior(prior: Json, role: string): DbRolePrior {
  const p = prior as Partial<DbRolePrior> | null;
  const valid =
    p !== null &&
    typeof p === 'object' &&
    p.kind === 'db-role' &&
    p.role === role &&
    typeof p.canLogin === 'boolean' &&
    typeof p.connectionLimit === 'number' &&
    Array.isArray(p.connectGrants) &&
    p.connectGrants.every((g: Partial<ConnectGrant> | null) => typeof g?.grantor === 'string' && typeof g.grantable === 'boolean');
  if (!valid)
    throw new SafeshiftError('QUIESCE_FAILED', `db-role:${role}: the recorded prior state is not one this quiescer captured: ${JSON.stringify(prior)}`);
  return p as DbRolePrior;
}
