/**
 * The ports the steps and the engine are written against. Adapters (local or AWS) implement them;
 * nothing that imports this file knows which runtime it runs in.
 */

/** The result of one query: the rows and how many rows the command touched. */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

/**
 * The small slice of a PostgreSQL client the engine needs (a `pg.Client` satisfies it).
 *
 * @example
 * ```ts
 * const { rows } = await client.query<{ n: number }>('select $1::int as n', [1]);
 * ```
 */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
}
