import { endSessions } from './end-sessions.ts';
import type { QueryResultRow } from 'pg';
import { checkIdentifierOption } from '../../core/identifiers.ts';
import type { Connector, QueryResult, SqlSession } from '../../ports.ts';
import { connectPg, withDatabase } from './pg-connection.ts';

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

  async connect(databaseId: string): Promise<SqlSession> {
    checkIdentifierOption(databaseId, 'database');
    const client = await connectPg(withDatabase(this.serverUrl, databaseId), { applicationName: 'safeshift' });
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

  /** {@link disconnectAll}, telling how many sessions were ended. */
  async endSessions(databaseId: string): Promise<number> {
    checkIdentifierOption(databaseId, 'database');
    const admin = await connectPg(this.serverUrl, { applicationName: 'safeshift' });
    try {
      return await endSessions(admin, 'datname = $1 and pid <> all($2::int[])', [databaseId, [...this.own]]);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}
