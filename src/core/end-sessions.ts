import type { SqlClient } from '../ports.ts';
import { SafeshiftError } from './errors.ts';

/**
 * Ends the sessions a filter selects from `pg_stat_activity` (never the caller's own) and waits until
 * they are gone. All are signalled at once and then polled every few milliseconds:
 * `pg_terminate_backend(pid, timeout)` waits in 100 ms steps per session, which turned ending an app's
 * pool of ten idle connections into a second of downtime.
 *
 * @example
 * ```ts
 * await endSessions(admin, 'datname = $1', ['shop']);
 * ```
 */
export async function endSessions(client: SqlClient, filter: string, params: readonly unknown[], timeoutMs = 5000): Promise<number> {
  const sessions = `from pg_stat_activity where (${filter}) and pid <> pg_backend_pid()`;
  const { rows: ended } = await client.query<{ n: number }>(`select count(pg_terminate_backend(pid))::int as n ${sessions}`, [...params]);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n ${sessions}`, [...params]);
    if ((rows[0]?.n ?? 0) === 0) return ended[0]?.n ?? 0;
    if (Date.now() > deadline) {
      throw new SafeshiftError('LOCK_TIMEOUT', `${rows[0]?.n} sessions did not end within ${Math.round(timeoutMs / 1000)} s of being terminated`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * The `application_name` of every session a workflow run opens, so that the run's sessions can be
 * found on the server after the Task that opened them is gone (timed out, killed, its Lambda ended).
 * PostgreSQL keeps 63 bytes of it; a run id is a UUID or a short name, which fits.
 *
 * @example
 * ```ts
 * runSessionName('6f1c2a9b-…') // 'safeshift run 6f1c2a9b-…'
 * ```
 */
export function runSessionName(runId: string): string {
  return `safeshift run ${runId}`.slice(0, 63);
}

/**
 * Ends every session of a run still on the server the client is connected to (on any database) and
 * waits until they are gone: what a Task left running when it failed cannot then change anything.
 */
export async function endRunSessions(client: SqlClient, runId: string, timeoutMs = 30_000): Promise<number> {
  return endSessions(client, 'application_name = $1', [runSessionName(runId)], timeoutMs);
}
