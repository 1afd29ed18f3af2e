import { ensureEmbeddedServer } from '../adapters/local/embedded-postgres.ts';
import { connectPg, redactUrl, withDatabase } from '../adapters/local/pg-connection.ts';
import { OptionError, SafeshiftError, SqlStates, sqlState } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type pg from 'pg';

/** The database the embedded server gives commands that name none. */
export const EMBEDDED_DATABASE = 'app';

/** An open connection for one command. */
export interface OpenDatabase {
  readonly client: pg.Client;
  /** The URL with the password redacted, for messages. */
  readonly label: string;
  close(): Promise<void>;
}

/**
 * Which database a local command works on, from its options: `--database-url` (or DATABASE_URL)
 * names the server and the database; without either, `--database NAME` on the embedded PostgreSQL
 * (default {@link EMBEDDED_DATABASE}). Giving both is refused: the URL already names a database.
 */
export interface LocalDatabaseChoice {
  /** The URL given with --database-url or DATABASE_URL. */
  readonly url?: string | undefined;
  /** The name given with --database. */
  readonly database?: string | undefined;
}

/** Checks a {@link LocalDatabaseChoice}: either a URL, or the embedded server with a database name. */
export function chooseLocalDatabase(choice: LocalDatabaseChoice): { readonly url: string } | { readonly embedded: string } {
  if (choice.url) {
    if (choice.database) throw new OptionError('--database goes with the embedded PostgreSQL; with --database-url the URL names the database');
    return { url: choice.url };
  }
  return { embedded: choice.database ?? EMBEDDED_DATABASE };
}

/**
 * Connects to the database a command names ({@link chooseLocalDatabase}). On the embedded
 * PostgreSQL (started on demand), its default `app` database is created on first use; a database
 * named with --database must exist unless `create` is set, so a mistyped name is said, not made.
 */
export async function openDatabase(choice: LocalDatabaseChoice & { readonly create?: boolean }, log: Logger): Promise<OpenDatabase> {
  const chosen = chooseLocalDatabase(choice);
  let target: string;
  if ('url' in chosen) {
    target = chosen.url;
  } else {
    const server = await ensureEmbeddedServer({ log: (line) => log.info(line) });
    target = withDatabase(server.url, chosen.embedded);
    await ensureDatabase(server.url, chosen.embedded, choice.create === true || chosen.embedded === EMBEDDED_DATABASE);
    log.info(`using the embedded PostgreSQL: ${redactUrl(target)}`);
  }
  const client = await connectPg(target, { applicationName: 'safeshift' });
  return { client, label: redactUrl(target), close: () => client.end() };
}

/**
 * Creates a database on the server at `serverUrl` when it does not exist yet; with `create: false`
 * refuses instead (DATABASE_NOT_FOUND), so a mistyped name is said, not made into an empty database.
 */
export async function ensureDatabase(serverUrl: string, name: string, create = true): Promise<void> {
  const admin = await connectPg(serverUrl, { applicationName: 'safeshift' });
  try {
    const { rows } = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (rows.length === 0 && !create) {
      throw new SafeshiftError(
        'DATABASE_NOT_FOUND',
        `database "${name}" does not exist on the embedded PostgreSQL; nothing was created. ` +
          `Check the name (\`psql\` \\l lists them); \`migrate\` creates it, \`upgrade\` and \`rehearse\` take --create to start it empty`,
      );
    }
    if (rows.length === 0) {
      await admin.query(`create database ${admin.escapeIdentifier(name)}`).catch((error: unknown) => {
        // Two commands starting at once may both try; the loser's database already exists.
        if (sqlState(error) !== SqlStates.duplicateDatabase) throw error;
      });
    }
  } finally {
    await admin.end();
  }
}
