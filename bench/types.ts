import type pg from 'pg';

/** What the runner hands every benchmark: one server, shared for the whole run. */
export interface BenchContext {
  /** Connection URL of the benchmark's private server (its default database). */
  readonly serverUrl: string;
  /** Smoke size: same code paths, tiny N, figures not meaningful. */
  readonly quick: boolean;
  /** A scratch folder for generated files; the runner removes it at the end. */
  readonly workDir: string;
  /** Creates an empty database on the server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Drops a database made by `createDatabase` (ignores one that is gone). */
  dropDatabase(name: string): Promise<void>;
  /**
   * Flushes the server's dirty buffers (CHECKPOINT) so the next timed run starts from the same
   * state as every other and no checkpoint of earlier work lands inside it.
   */
  settle(): Promise<void>;
  /** Opens a connected client on a URL; the caller ends it. */
  connect(url: string): Promise<pg.Client>;
  /** A progress line, on stderr so stdout holds only results. A plain function: it may be handed on as it is. */
  readonly progress: (line: string) => void;
}

/** A goal a benchmark checks and reports as met or NOT MET (never an assertion: this is not a test). */
export interface Goal {
  readonly description: string;
  readonly met: boolean;
  /** The figures that decided it, e.g. `1.12x`. */
  readonly detail: string;
}

/** What a benchmark prints: text blocks (tables) and its goals. */
export interface BenchReport {
  readonly title: string;
  readonly lines: readonly string[];
  readonly goals: readonly Goal[];
}

/**
 * One benchmark module: `bench/run.ts` selects it by `name` (a filter argument matches any part of
 * the name or its keywords) and runs it on the shared server.
 *
 * @example
 * ```ts
 * export const myBench: Benchmark = {
 *   name: 'apply-1000', keywords: ['migrate'], description: 'apply 1,000 migrations',
 *   run: async (ctx) => ({ title: 'apply', lines: [], goals: [] }),
 * };
 * ```
 */
export interface Benchmark {
  readonly name: string;
  /** Other words a filter may match (e.g. `migrate` for the apply benchmark). */
  readonly keywords: readonly string[];
  readonly description: string;
  run(ctx: BenchContext): Promise<BenchReport>;
}
