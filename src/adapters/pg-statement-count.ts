import type pg from 'pg';
import type { SqlErrorProgress } from '../ports.ts';

/**
 * Makes a `pg` client report, on every error its `query` throws, how many statements the server
 * completed before it ({@link SqlErrorProgress} `completedStatements`): the engine sends a SQL
 * migration as one simple-protocol query and names the statement that failed from this count, never
 * by running the statements again. Call it before `connect()`; returns the same client.
 *
 * It listens to the client's protocol connection: PostgreSQL sends one CommandComplete per finished
 * statement, then an ErrorResponse for the failing one (the rest of the query is skipped), then
 * ReadyForQuery, which ends the query and starts the count again. The count is put on the error object
 * when the ErrorResponse arrives, before `query`'s promise settles.
 *
 * @example
 * ```ts
 * const client = countCompletedStatements(new pg.Client(config));
 * await client.connect();
 * await client.query('select 1; select 1/0').catch((e: SqlErrorProgress) => e.completedStatements); // 1
 * ```
 */
export function countCompletedStatements<C extends pg.Client>(client: C): C {
  let completed = 0;
  const connection = client.connection;
  connection.on('commandComplete', () => {
    completed++;
  });
  connection.on('readyForQuery', () => {
    completed = 0;
  });
  connection.on('errorMessage', (error: object) => {
    const progress: SqlErrorProgress = { completedStatements: completed };
    Object.assign(error, progress);
  });
  return client;
}
