import { AsyncLocalStorage } from 'node:async_hooks';
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
  const applicationName = opts.applicationName ?? 'safeshift';
  const shelf = shelves.getStore();
  if (shelf?.keeps(url, applicationName)) return shelf.take(applicationName, opts);
  return openClient(url, applicationName, opts, (error) => opts.onIdleError?.(error));
}

/**
 * One short session for `fn`: connected with {@link connectPg}, ended afterwards whatever `fn` did
 * (an error while ending is not `fn`'s and is dropped).
 *
 * @example
 * ```ts
 * const n = await withPgSession(serverUrl, { applicationName: 'safeshift' }, async (c) => (await c.query('select 1')).rowCount);
 * ```
 */
export async function withPgSession<T>(url: string, opts: ConnectPgOptions, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectPg(url, opts);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A new session, every failure translated; `onError` hears of a connection lost while idle. */
async function openClient(url: string, applicationName: string, opts: ConnectPgOptions, onError: (error: ConnectionError) => void): Promise<pg.Client> {
  const parsed = parseUrl(url);
  const timeout = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = countCompletedStatements(
    new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: timeout,
      application_name: applicationName,
    }),
  );
  client.on('error', (error) => {
    onError(translate(error, parsed, timeout, false, 'Lost the connection to'));
  });
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
 * Runs `fn` with the sessions {@link connectPg} opens to exactly `url` under one of
 * `applicationNames` kept for reuse: within `fn`, and whatever it starts, `end()` hands such a session
 * back instead of closing it, and the next `connectPg` for the same name takes it again. How a local
 * run's maintenance sessions (the fleet's, the quiescers', the connector's: a few dozen per run, each
 * a backend started and authenticated, then stopped) become a handful. When `fn` settles, every kept
 * session is closed, and one handed back later is closed then.
 *
 * A session taken again is as good as a new one: one is kept only when it was handed back idle,
 * outside a transaction and with no query of its holder still running, and after `DISCARD ALL`
 * (settings, roles, temporary tables, advisory locks, prepared statements: all gone, as when it
 * ended), and it answers a query before it is given out. One the server ended while it was kept is
 * dropped. Only the names given are kept: never a run's own sessions, which the rollback and
 * `safeshift recover` count as left behind and end.
 *
 * @example
 * ```ts
 * await reusingSessions(serverUrl, ['safeshift fleet'], async () => {
 *   for (const sql of statements) {
 *     const c = await connectPg(serverUrl, { applicationName: 'safeshift fleet' }); // one backend for all
 *     try { await c.query(sql); } finally { await c.end(); }
 *   }
 * });
 * ```
 */
export async function reusingSessions<T>(url: string, applicationNames: readonly string[], fn: () => Promise<T>): Promise<T> {
  const shelf = new SessionShelf(url, applicationNames);
  try {
    return await shelves.run(shelf, fn);
  } finally {
    await shelf.close();
  }
}

/** The shelf of the {@link reusingSessions} call the caller runs in, if any. */
const shelves = new AsyncLocalStorage<SessionShelf>();

/** One session a {@link SessionShelf} keeps, and what it knows of its state. */
interface KeptSession {
  readonly client: pg.Client;
  /** The transaction status of the last ReadyForQuery: `I` idle, `T` in a transaction, `E` in a failed one. */
  status: string;
  /** The holder's queries not yet settled, or -1 when one could not be followed (a submittable). */
  running: number;
  /** Whose lease it is now: that holder hears of its connection lost while idle. */
  holder: ConnectPgOptions | undefined;
  gone: boolean;
}

/** The sessions kept by one {@link reusingSessions} call. */
class SessionShelf {
  private readonly names: ReadonlySet<string>;
  private readonly idle = new Map<string, KeptSession[]>();
  private closed = false;

  constructor(
    private readonly url: string,
    names: readonly string[],
  ) {
    this.names = new Set(names);
  }

  keeps(url: string, applicationName: string): boolean {
    return !this.closed && url === this.url && this.names.has(applicationName);
  }

  /** A kept session that still answers, or a new one; either way leased to this caller. */
  async take(applicationName: string, opts: ConnectPgOptions): Promise<pg.Client> {
    const idle = this.idle.get(applicationName) ?? [];
    for (let kept = idle.pop(); kept; kept = idle.pop()) {
      // An empty statement: the cheapest round trip there is.
      if (await settlesWithin(kept.client.query('select'), opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS)) return this.lease(kept, applicationName, opts);
      await this.drop(kept);
    }
    // Filled in once connected; the server can only end a session that exists.
    const made: { kept?: KeptSession } = {};
    const client = await openClient(this.url, applicationName, opts, (error) => {
      // Lost during a lease: its holder hears of it, as of any session's. Lost on the shelf: dropped.
      if (made.kept?.holder) made.kept.holder.onIdleError?.(error);
      else if (made.kept) void this.drop(made.kept);
    });
    const kept: KeptSession = { client, status: 'I', running: 0, holder: opts, gone: false };
    made.kept = kept;
    client.connection.on('readyForQuery', (message: { status?: string }) => {
      kept.status = message.status ?? '?';
    });
    client.on('end', () => {
      kept.gone = true;
      this.forget(kept);
    });
    return this.lease(kept, applicationName, opts);
  }

  /**
   * The session as its holder sees it: `end()` hands it back (once, however often it is called), and
   * a query after that fails as on an ended client rather than landing in the next holder's session.
   */
  private lease(kept: KeptSession, applicationName: string, opts: ConnectPgOptions): pg.Client {
    kept.holder = opts;
    kept.running = 0;
    let handedBack: Promise<void> | undefined;
    const follow = (result: unknown): unknown => {
      if (!(result instanceof Promise)) {
        kept.running = -1;
        return result;
      }
      if (kept.running >= 0) kept.running++;
      const settled = () => {
        if (kept.running > 0) kept.running--;
      };
      result.then(settled, settled);
      return result;
    };
    return new Proxy(kept.client, {
      get: (target, property) => {
        if (property === 'end') return () => (handedBack ??= this.handBack(kept, applicationName));
        if (property === 'query') {
          return (...args: unknown[]): unknown =>
            handedBack ? Promise.reject(new Error('Client was closed and is not queryable')) : follow((target.query.bind(target) as Query)(...args));
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  private async handBack(kept: KeptSession, applicationName: string): Promise<void> {
    kept.holder = undefined;
    if (!this.keepable(kept) || kept.running !== 0 || kept.status !== 'I') return this.drop(kept);
    if (!(await settlesWithin(kept.client.query('discard all'), DEFAULT_TIMEOUT_MS)) || !this.keepable(kept)) return this.drop(kept);
    const idle = this.idle.get(applicationName) ?? [];
    idle.push(kept);
    this.idle.set(applicationName, idle);
  }

  /** Read anew after every wait: the shelf may close, and the server end the session, meanwhile. */
  private keepable(kept: KeptSession): boolean {
    return !this.closed && !kept.gone;
  }

  private forget(kept: KeptSession): void {
    for (const idle of this.idle.values()) {
      const i = idle.indexOf(kept);
      if (i >= 0) idle.splice(i, 1);
    }
  }

  private async drop(kept: KeptSession): Promise<void> {
    this.forget(kept);
    await kept.client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const kept = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(kept.map((k) => this.drop(k)));
  }
}

type Query = (...args: unknown[]) => unknown;

/** Whether `work` succeeds within `ms`; a kept session that fails or is slow to answer is not worth keeping. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
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

/**
 * A failure to connect to `url` (from a `pg` pool, say) as {@link connectPg} reports one: a
 * `ConnectionError` that says what to fix, without the password. `timedOut` when the attempt took
 * `timeoutMs` or longer.
 */
export function connectionFailure(error: unknown, url: string, timeoutMs: number, timedOut: boolean): ConnectionError {
  return translate(error, parseUrl(url), timeoutMs, timedOut);
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
