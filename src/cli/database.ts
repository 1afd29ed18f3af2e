import { ensureEmbeddedServer } from '../adapters/local/embedded-postgres.ts';
import { connectPg, redactUrl, withDatabase } from '../adapters/local/pg-connection.ts';
import { SafeshiftError, SqlStates, sqlState } from '../core/errors.ts';
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
 * Connects to `url`, or, without one, to the embedded PostgreSQL (started on demand, its `app`
 * database created on first use).
 */
export async function openDatabase(url: string | undefined, log: Logger): Promise<OpenDatabase> {
  let target = url;
  if (!target) {
    const server = await ensureEmbeddedServer({ log: (line) => log.info(line) });
    target = withDatabase(server.url, EMBEDDED_DATABASE);
    await ensureDatabase(server.url, EMBEDDED_DATABASE);
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
      throw new SafeshiftError('DATABASE_NOT_FOUND', `database "${name}" does not exist on the embedded PostgreSQL; nothing was created. `
        + `Check the name (\`psql\` \\l lists them); \`upgrade\` and \`rehearse\` take --create to start it empty`);
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
