import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPg, redactUrl, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { ConnectionError } from '../src/core/errors.ts';
import { freshDatabase, testServerUrl } from './support/database.ts';

/** A port nothing listens on: asked of the OS, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

async function connectError(url: string, opts: Parameters<typeof connectPg>[1] = {}): Promise<ConnectionError> {
  const error = await connectPg(url, opts).then(
    async (client) => {
      await client.end();
      throw new Error('connected, but should not have');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectionError);
  return error as ConnectionError;
}

describe('connectPg', () => {
  // A server that accepts connections and never answers, as a firewall that drops packets seems to.
  let silent: net.Server;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => silent.close(resolve));
  });

  it('connects and names the application', async () => {
    const client = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-app' });
    try {
      const { rows } = await client.query<{ name: string }>(`select current_setting('application_name') as name`);
      expect(rows[0]?.name).toBe('safeshift-test-app');
    } finally {
      await client.end();
    }
  });

  const SECRET = 'hunter2-not-this-one';
  const cases: readonly { name: string; url: () => string | Promise<string>; says: RegExp; timeout?: number }[] = [
    {
      name: 'nothing listens on the port',
      url: async () => `postgres://postgres:${SECRET}@127.0.0.1:${await closedPort()}/postgres`,
      says: /connection refused by 127\.0\.0\.1:\d+/,
    },
    { name: 'the password is wrong', url: () => withPassword(testServerUrl(), SECRET), says: /password authentication failed for user "postgres"/ },
    { name: 'the database does not exist', url: () => withDatabase(testServerUrl(), 'no_such_database'), says: /database "no_such_database" does not exist/ },
    { name: 'the host does not exist', url: () => `postgres://app:${SECRET}@no-such-host.invalid:5432/app`, says: /host "no-such-host\.invalid" not found/ },
    {
      name: 'the server never answers',
      url: () => `postgres://app:${SECRET}@127.0.0.1:${(silent.address() as net.AddressInfo).port}/app`,
      says: /no answer from 127\.0\.0\.1:\d+ within 0\.3 s/,
      timeout: 300,
    },
    { name: 'the URL is garbage', url: () => 'definitely not a url', says: /is not a valid PostgreSQL URL/ },
    { name: 'the URL has no scheme', url: () => `app:${SECRET}@localhost/app`, says: /is not a valid PostgreSQL URL/ },
    { name: 'the URL is for another database engine', url: () => `mysql://app:${SECRET}@localhost/app`, says: /is not a valid PostgreSQL URL/ },
    { name: 'the port is not a number', url: () => `postgres://app:${SECRET}@localhost:notaport/app`, says: /is not a valid PostgreSQL URL|invalid port/ },
  ];

  it.each(cases)('explains, without the password or a stack, when $name', async ({ url, says, timeout }) => {
    const target = await url();
    const error = await connectError(target, timeout ? { connectTimeoutMs: timeout } : {});
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.message).toMatch(says);
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain(decodeURIComponent(new URL(testServerUrl()).password));
    expect(error.message).not.toMatch(/\n\s+at /);
  });

  it('keeps the process alive when an idle connection is killed', async () => {
    const idleErrors: ConnectionError[] = [];
    const db = await freshDatabase();
    const victim = await connectPg(db.url, { onIdleError: (e) => idleErrors.push(e) });
    try {
      const { rows } = await victim.query<{ pid: number }>('select pg_backend_pid() as pid');
      await db.client.query('select pg_terminate_backend($1)', [rows[0]?.pid]);
      await expect.poll(() => idleErrors.length).toBeGreaterThan(0);
      expect(idleErrors[0]?.code).toBe('CONNECTION_FAILED');
      expect(idleErrors[0]?.message).toMatch(/^Lost the connection to postgres:\/\/postgres:\*\*\*@/);
    } finally {
      await victim.end().catch(() => undefined);
      await db.drop();
    }
  });
});

describe('redactUrl', () => {
  it.each([
    ['postgres://app:s3cret@db:5432/shop', 'postgres://app:***@db:5432/shop'],
    ['postgresql://app:p%40ss@db/shop?sslmode=require', 'postgresql://app:***@db/shop?sslmode=require'],
    ['postgres://app@db/shop?password=s3cret', 'postgres://app@db/shop?password=***'],
    ['postgres://db/shop', 'postgres://db/shop'],
    ['postgres://u:p@ss@host:notaport/db', 'postgres://u:***@host:notaport/db'],
    ['app:s3cret@localhost/app', 'app:***@localhost/app'],
    ['not a url', 'not a url'],
  ])('%s → %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});

describe('withDatabase', () => {
  it.each([
    ['postgres://app:pw@db:5432/shop', 'shop_clone', 'postgres://app:pw@db:5432/shop_clone'],
    ['postgres://app:pw@db/shop?sslmode=disable', 'other', 'postgres://app:pw@db/other?sslmode=disable'],
    ['postgres://app:pw@db', 'x', 'postgres://app:pw@db/x'],
    ['postgres://app:pw@db/shop', 'with space', 'postgres://app:pw@db/with%20space'],
  ])('%s + %s', (url, database, expected) => {
    expect(withDatabase(url, database)).toBe(expected);
  });

  it('reaches the named database', async () => {
    const db = await freshDatabase();
    try {
      const client = await connectPg(withDatabase(testServerUrl(), db.name));
      const { rows } = await client.query<{ name: string }>('select current_database() as name');
      await client.end();
      expect(rows[0]?.name).toBe(db.name);
    } finally {
      await db.drop();
    }
  });

  it('refuses a URL that is not a PostgreSQL URL', () => {
    expect(() => withDatabase('nonsense', 'x')).toThrow(ConnectionError);
  });
});
