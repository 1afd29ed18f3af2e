import { endRunSessions, endSessions, runSessionName } from '../../core/end-sessions.ts';
import type pg from 'pg';
import type { QueryResultRow } from 'pg';
import { checkIdentifierOption } from '../../core/identifiers.ts';
import type { ConnectOptions, Connector, QueryResult, SqlSession } from '../../ports.ts';
import { connectPg, withDatabase, withPgSession } from './pg-connection.ts';
import { targetProblem } from './target-databases.ts';

/**
 * The local {@link Connector}: sessions to any database on the server the URL points at (production,
 * a clone, a retired production), reached with the same credentials.
 *
 * @example
 * ```ts
 * const connector = new LocalConnector('postgres://postgres:pw@127.0.0.1:5432/postgres');
 * const session = await connector.connect('shop');
 * try { await session.query('select 1'); } finally { await session.close(); }
 * await connector.disconnectAll('shop'); // everyone else's sessions on "shop" are ended
 * ```
 */
export class LocalConnector implements Connector {
  /** Backend pids of the sessions this connector opened and that are still open: this process's own pool. */
  private readonly own = new Set<number>();

  constructor(private readonly serverUrl: string) {}

  async connect(databaseId: string, options: ConnectOptions = {}): Promise<SqlSession> {
    checkIdentifierOption(databaseId, 'database');
    const applicationName = options.runId ? runSessionName(options.runId) : 'safeshift';
    const client = await connectPg(withDatabase(this.serverUrl, databaseId), { applicationName });
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    const pid = rows[0]?.pid ?? -1;
    this.own.add(pid);
    let closed = false;
    return {
      query: async <R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
        const result = await client.query<QueryResultRow>(text, values as unknown[] | undefined);
        return { rows: result.rows as R[], rowCount: result.rowCount };
      },
      close: async () => {
        if (closed) return;
        closed = true;
        this.own.delete(pid);
        await client.end().catch(() => undefined);
      },
    };
  }

  /**
   * Ends every session on the database except the ones this connector opened (ports.ts: "except this
   * process's own pool"), waiting up to 5 s for each to be gone.
   */
  async disconnectAll(databaseId: string): Promise<void> {
    await this.endSessions(databaseId);
  }

  /** Ends the run's sessions on every database of the server: production and the run's clones alike. */
  async endRunSessions(databaseId: string, runId: string): Promise<number> {
    return this.asAdmin(databaseId, (admin) => endRunSessions(admin, runId));
  }

  /** {@link Connector.targetProblem}: the server's own databases and safeshift's snapshots and clones. */
  async targetProblem(databaseId: string): Promise<string | undefined> {
    return this.asAdmin(databaseId, (admin) => targetProblem(admin, databaseId));
  }

  /** {@link disconnectAll}, telling how many sessions were ended. */
  async endSessions(databaseId: string): Promise<number> {
    return this.asAdmin(databaseId, (admin) => endSessions(admin, 'datname = $1 and pid <> all($2::int[])', [databaseId, [...this.own]]));
  }

  /** One short session on the server's maintenance database, for work about `databaseId`. */
  private async asAdmin<T>(databaseId: string, fn: (admin: pg.Client) => Promise<T>): Promise<T> {
    checkIdentifierOption(databaseId, 'database');
    return withPgSession(this.serverUrl, { applicationName: 'safeshift' }, fn);
  }
}
