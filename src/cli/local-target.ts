import { ensureEmbeddedServer } from '../adapters/local/embedded-postgres.ts';
import { openLocalPorts, type LocalPorts } from '../adapters/local/local-workflows.ts';
import { withDatabase } from '../adapters/local/pg-connection.ts';
import type { CommandInput, OptionSpec } from './command.ts';
import { DATABASE_NAME_OPTION, historyLocation, localDatabaseChoice, migrationsDir } from './common-options.ts';
import { chooseLocalDatabase, ensureDatabase } from './database.ts';

/** Options of the workflow commands (upgrade, restore, rehearse) and the ledger readers. */
export const WORKFLOW_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'database-url': {
    type: 'string',
    placeholder: 'URL',
    description: 'the production database (or DATABASE_URL); its server must let this user create databases. Without either: the embedded PostgreSQL',
  },
  database: DATABASE_NAME_OPTION,
};

/** `--create`, for the verbs that may start from an empty database (upgrade, rehearse). */
export const CREATE_OPTION: Readonly<Record<string, OptionSpec>> = {
  create: { type: 'boolean', description: 'with the embedded PostgreSQL: create the database when it does not exist (empty: every migration is pending)' },
};

/**
 * Opens the local ports for the database a command names: `--database-url` (or DATABASE_URL) gives
 * the server and the database; without either, the embedded PostgreSQL and its `app` database. A
 * database that does not exist is refused, never made, unless the command was given `--create`.
 */
export async function openTarget(input: CommandInput, opts: { needsDir: boolean }): Promise<{ ports: LocalPorts; database: string }> {
  const chosen = chooseLocalDatabase(localDatabaseChoice(input));
  let serverUrl: string;
  let database: string;
  if ('url' in chosen) {
    serverUrl = withDatabase(chosen.url, 'postgres');
    database = decodeURIComponent(new URL(chosen.url).pathname.replace(/^\//, '')) || 'postgres';
  } else {
    const server = await ensureEmbeddedServer({ log: (l) => input.log.info(l) });
    database = chosen.embedded;
    serverUrl = server.url;
    await ensureDatabase(server.url, database, input.values.create === true);
  }
  const ports = await openLocalPorts({
    serverUrl,
    database,
    migrationsDir: opts.needsDir ? migrationsDir(input) : '.',
    history: historyLocation(input),
    log: input.log,
  });
  return { ports, database };
}
