import type { Logger } from '../core/logger.ts';
import type { SqlClient } from '../ports.ts';

/** One option of a command, as `--help` shows it and `parseArgs` reads it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  /** What `--help` shows as the value, e.g. `V`. */
  readonly placeholder?: string;
  readonly default?: string;
  readonly short?: string;
  /** The option may be given several times; its value is then an array. */
  readonly multiple?: boolean;
}

/** What a command is handed when it runs. */
export interface CommandInput {
  /** Each option as `parseArgs` read it: a string, a boolean, or every value of a repeatable (`multiple`) one. */
  readonly values: Readonly<Record<string, string | boolean | readonly string[] | undefined>>;
  readonly positionals: readonly string[];
  readonly log: Logger;
  /** Connects (embedded PostgreSQL unless --database-url or DATABASE_URL) on first call. */
  readonly database: () => Promise<SqlClient>;
  readonly env: NodeJS.ProcessEnv;
}

/** What a command returns: its exit code, its JSON document and its text for a person. */
export interface CommandOutput {
  readonly exitCode: number;
  readonly json: unknown;
  readonly text: string;
}

/** A CLI verb: a thin layer over a library function. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** A paragraph for `--help`. */
  readonly description: string;
  readonly examples: readonly string[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Whether it reads a database (and so takes --database-url). */
  readonly usesDatabase: boolean;
  /**
   * Whether it may create the embedded PostgreSQL database it is given with --database, like Flyway
   * starting an empty schema: only `migrate`. The others refuse a name that does not exist
   * (DATABASE_NOT_FOUND) unless given --create.
   */
  readonly createsDatabase?: boolean;
  run(input: CommandInput): Promise<CommandOutput>;
}
