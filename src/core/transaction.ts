import type { SqlClient } from '../ports.ts';

/**
 * Runs `fn` inside BEGIN … COMMIT on one client, rolling back when it throws.
 *
 * @example
 * ```ts
 * await inTransaction(client, async () => { await history.deleteFailed(); });
 * ```
 */
export async function inTransaction<T>(client: SqlClient, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await fn();
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}
