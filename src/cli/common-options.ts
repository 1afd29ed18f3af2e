import { SafeshiftError } from '../core/errors.ts';
import { DEFAULT_HISTORY, type HistoryLocation } from '../core/history.ts';
import { checkIdentifierOption } from '../core/identifiers.ts';
import { parseDuration } from '../core/directives.ts';
import type { CommandInput, OptionSpec } from './command.ts';
import { EMBEDDED_DATABASE, type LocalDatabaseChoice } from './database.ts';

/** `--database NAME`: which database of the embedded PostgreSQL; every local verb takes it. */
export const DATABASE_NAME_OPTION: OptionSpec = {
  type: 'string',
  placeholder: 'NAME',
  description: `with the embedded PostgreSQL, which database (default: ${EMBEDDED_DATABASE})`,
};

/** Where the history table is: --schema and --table. */
export const HISTORY_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  schema: { type: 'string', placeholder: 'NAME', default: DEFAULT_HISTORY.schema, description: 'schema of the history table' },
  table: { type: 'string', placeholder: 'NAME', default: DEFAULT_HISTORY.table, description: 'name of the history table' },
};

/** Options every database command takes. */
export const DATABASE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'database-url': {
    type: 'string',
    placeholder: 'URL',
    description: 'PostgreSQL URL (or set DATABASE_URL); without either, the embedded PostgreSQL in .safeshift/ is used',
  },
  database: DATABASE_NAME_OPTION,
  ...HISTORY_OPTIONS,
};

/** The migrations folder option. */
export const DIR_OPTION: Readonly<Record<string, OptionSpec>> = {
  dir: {
    type: 'string',
    placeholder: 'DIR',
    default: 'migrations',
    description: 'folder with V<version>__<description>.sql|.ts|.js and R__<description>.sql files',
  },
};

/** Options of commands that take the migration lock. */
export const LOCK_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'lock-wait': {
    type: 'string',
    placeholder: 'DURATION',
    default: '60s',
    description: 'how long to wait for another run holding the lock before failing with LOCKED',
  },
};

/** Reads --schema and --table, quoting-safe and checked. */
export function historyLocation(input: CommandInput): HistoryLocation {
  return {
    schema: checkIdentifierOption(String(input.values.schema ?? DEFAULT_HISTORY.schema), '--schema'),
    table: checkIdentifierOption(String(input.values.table ?? DEFAULT_HISTORY.table), '--table'),
  };
}

/** Reads a duration option such as --lock-wait 30s into milliseconds. */
export function durationOption(input: CommandInput, name: string, fallback: string): number {
  const text = String(input.values[name] ?? fallback);
  const ms = parseDuration(text);
  if (ms === undefined) throw new SafeshiftError('BAD_OPTION', `--${name} needs a duration like 30s, 500ms or 2min, not "${text}"`);
  return ms;
}

/** The database options of a command line: --database-url (else DATABASE_URL) and --database. */
export function localDatabaseChoice(input: Pick<CommandInput, 'values' | 'env'>): LocalDatabaseChoice {
  const url = input.values['database-url'];
  const database = input.values.database;
  return {
    // An empty --database-url or DATABASE_URL is as good as none.
    url: [typeof url === 'string' ? url : '', input.env.DATABASE_URL ?? ''].find((u) => u !== ''),
    database: typeof database === 'string' ? database : undefined,
  };
}

/** Every value of a repeatable option (`multiple: true`), in the order given; none: an empty list. */
export function listOption(input: CommandInput, name: string): string[] {
  const value = input.values[name];
  if (value === undefined || typeof value === 'boolean') return [];
  return typeof value === 'string' ? [value] : [...value];
}

/** The migrations folder. */
export function migrationsDir(input: CommandInput): string {
  return String(input.values.dir ?? 'migrations');
}

/** The options that decide what a run that quiesces may do: `upgrade` and `restore`, local and on AWS. */
export const QUIESCE_SAFETY_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'no-quiesce': {
    type: 'boolean',
    description: 'run with no API quiesced, on purpose: whatever is written after the snapshot is lost if the snapshot is brought back',
  },
  'verify-timeout': {
    type: 'string',
    placeholder: 'DURATION',
    default: '30s',
    description: 'how long one verify/*.sql check may run (the APIs are stopped meanwhile)',
  },
};

/** The run input fields {@link QUIESCE_SAFETY_OPTIONS} set. */
export function quiesceSafety(input: CommandInput): { noQuiesce: boolean; verifyTimeoutSeconds: number } {
  const ms = durationOption(input, 'verify-timeout', '30s');
  if (ms <= 0) throw new SafeshiftError('BAD_OPTION', '--verify-timeout must be longer than 0');
  return { noQuiesce: input.values['no-quiesce'] === true, verifyTimeoutSeconds: ms / 1000 };
}
