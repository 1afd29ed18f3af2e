import pg from 'pg';
import { ConnectionError, SqlStates, sqlState } from '../../core/errors.ts';
import { countCompletedStatements } from '../pg-statement-count.ts';

export interface ConnectPgOptions {
  /** Shown in `pg_stat_activity`, so an operator can tell safeshift's sessions apart. @default 'safeshift' */
  readonly applicationName?: string;
  /** How long to wait for the server before giving up. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** Called when an idle, connected client loses its connection. @default ignore: the next query fails instead */
  readonly onIdleError?: (error: ConnectionError) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const POSTGRES_URL_HINT = 'expected postgres://user:password@host:port/database';

/**
 * Connects a `pg` client, turning every way that can fail into a `ConnectionError` (code
 * `CONNECTION_FAILED`) whose message says what to fix and shows the URL without its password.
 * The client gets an `'error'` listener, so a connection dropped while idle never crashes the process.
 *
 * @example
 * ```ts
 * const client = await connectPg(process.env.DATABASE_URL!, { applicationName: 'safeshift migrate' });
 * try { await client.query('select 1'); } finally { await client.end(); }
 * ```
 */
export async function connectPg(url: string, opts: ConnectPgOptions = {}): Promise<pg.Client> {
  const parsed = parseUrl(url);
  const timeout = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = countCompletedStatements(
    new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: timeout,
      application_name: opts.applicationName ?? 'safeshift',
    }),
  );
  client.on('error', (error) => opts.onIdleError?.(translate(error, parsed, timeout, false, 'Lost the connection to')));
  const began = Date.now();
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw translate(error, parsed, timeout, Date.now() - began >= timeout);
  }
  return client;
}

/**
 * The URL with its password (in the user-info part or a `password=` parameter) replaced by `***`,
 * safe for messages and logs. Text that does not parse as a URL is redacted just as carefully.
 *
 * @example
 * ```ts
 * redactUrl('postgres://app:s3cret@db:5432/shop') // 'postgres://app:***@db:5432/shop'
 * ```
 */
export function redactUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    /* handled below */
  }
  if (!parsed?.host) {
    // Not a URL with a host ("user:pw@host/db" parses as scheme "user:"): hide everything from the
    // first ":" after the user name to the last "@", and any password= value.
    return url.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?[^:/?#@\s]*):.*@/i, '$1:***@').replace(/(password=)[^&\s]*/gi, '$1***');
  }
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
  }
  return parsed
    .toString()
    .replace(':%2A%2A%2A@', ':***@')
    .replace(/=%2A%2A%2A/g, '=***');
}

/**
 * The same server and credentials, another database: how safeshift reaches a clone or snapshot.
 *
 * @example
 * ```ts
 * withDatabase('postgres://app:pw@db:5432/shop', 'shop_clone') // 'postgres://app:pw@db:5432/shop_clone'
 * ```
 */
export function withDatabase(url: string, database: string): string {
  const parsed = parseUrl(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function parseUrl(url: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    /* reported below */
  }
  if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') || !(parsed.hostname || parsed.searchParams.has('host'))) {
    throw new ConnectionError(`The database URL "${redactUrl(url)}" is not a valid PostgreSQL URL (${POSTGRES_URL_HINT}).`);
  }
  if (parsed.port !== '' && !(Number(parsed.port) > 0)) {
    throw new ConnectionError(`The database URL "${redactUrl(url)}" has an invalid port (${POSTGRES_URL_HINT}).`);
  }
  return parsed;
}

/** Turns a driver or socket error into a message a person can act on; never includes a stack or the password. */
function translate(error: unknown, url: URL, timeoutMs: number, timedOut = false, what = 'Could not connect to'): ConnectionError {
  const where = redactUrl(url.toString());
  const host = `${url.hostname}:${url.port || '5432'}`;
  const user = decodeURIComponent(url.username) || 'the default user';
  const database = decodeURIComponent(url.pathname.slice(1)) || user;
  const code = (error as { code?: unknown } | null)?.code;
  // Belt and braces: whatever the driver says, its text never carries the password on to the user.
  const password = decodeURIComponent(url.password);
  const said = error instanceof Error ? error.message : String(error);
  const raw = password ? said.split(password).join('***') : said;
  const state = sqlState(error);
  let message: string;
  if (timedOut || code === 'ETIMEDOUT' || raw === 'timeout expired') {
    message = `no answer from ${host} within ${timeoutMs / 1000} s. Check the host and port, and that a firewall or security group lets this machine in.`;
  } else if (code === 'ECONNREFUSED') {
    message = `connection refused by ${host}. Is PostgreSQL running and listening on that host and port?`;
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    message = `host "${url.hostname}" not found. Check the host name in the URL.`;
  } else if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    message = `${host} is unreachable from this machine (${code}).`;
  } else if (state === SqlStates.invalidPassword) {
    message = `password authentication failed for user "${user}". Check the password in the URL.`;
  } else if (state === SqlStates.invalidAuthorization) {
    // The server's own text says which: an unknown role or no pg_hba.conf entry. It never holds the password.
    message = `the server refused user "${user}": ${raw}.`;
  } else if (state === SqlStates.invalidCatalogName) {
    message = `database "${database}" does not exist on ${host}. Create it, or fix the database name in the URL.`;
  } else if (state === '53300') {
    message = `the server has no free connection slots (too_many_connections). Close idle sessions or raise max_connections.`;
  } else if (state === '57P03') {
    message = `the server is starting up or shutting down; try again in a moment.`;
  } else if (state === SqlStates.objectNotInPrerequisiteState && raw.includes('not currently accepting connections')) {
    return new ConnectionError(
      `${what} ${where}: database "${database}" does not accept connections now (its ALLOW_CONNECTIONS is off). ` +
        `A local snapshot closes it while it copies; if a safeshift run was interrupted ` +
        `then, \`safeshift recover --database ${database}\` opens it again as it was and finishes that run.`,
      error,
      'DATABASE_CLOSED',
    );
  } else if (raw.includes('client password must be a string')) {
    message = `the server asks for a password but the URL has none. Add it to the URL.`;
  } else {
    message = `${state ? `${raw} (SQLSTATE ${state})` : raw}.`;
  }
  return new ConnectionError(`${what} ${where}: ${message.replace(/\.\.$/, '.')}`, error);
}
