import type pg from 'pg';
import type { MigrationLayout } from '../fixtures.ts';

/**
 * One way of applying the generated migrations. The runner connects `client` to a fresh empty
 * database before the clock starts and ends it after, so every contender is timed from "connected"
 * to "all applied" and nothing else.
 */
export interface Contender {
  readonly name: string;
  /** Which generated folder it reads. */
  readonly layout: MigrationLayout;
  /** A short note printed under the table: how the contender was run. */
  readonly how: string;
  /** Work done before the clock starts (only the limit uses it: it preloads the files). */
  prepare?(dir: string): Promise<void>;
  /** Applies every migration in `dir` to the database `client` is connected to. */
  apply(client: pg.Client, dir: string): Promise<void>;
}
