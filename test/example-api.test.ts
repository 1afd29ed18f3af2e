import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { classifyDbFailure } from '../examples/api/db-failure.ts';
import { startShopApi, type ShopApi } from '../examples/api/server.ts';
import { startWriter } from '../examples/load/writer.ts';
import { dropShop } from '../examples/seed/drop-shop.ts';
import { seedShop } from '../examples/seed/seed-shop.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';

const MIGRATIONS = fileURLToPath(new URL('../examples/migrations', import.meta.url));
const API_MAIN = fileURLToPath(new URL('../examples/api/main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A seeded shop with its API running and a superuser session on its database. Roles are
 * cluster-wide and files run in parallel, so each test gets its own role as well as its own database.
 */
async function shop() {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const names = { serverUrl: testServerUrl(), database: `shop_${tag}`, appRole: `shop_app_${tag}` };
  cleanups.push(() => dropShop(names));
  const { appUrl } = await seedShop({ ...names, appPassword: randomBytes(12).toString('hex'), migrationsDir: MIGRATIONS, customers: 20, orders: 2_000 });
  const log: string[] = [];
  const api = await startShopApi({ databaseUrl: appUrl, log: (l) => log.push(l) });
  cleanups.push(() => api.close());
  const admin = await connectPg(withDatabase(testServerUrl(), names.database));
  cleanups.push(() => admin.end());
  return { api, admin, role: names.appRole, appUrl, log };
}

/** What the tests read of an answer's JSON body. */
interface Body {
  readonly id?: number;
  readonly mode?: string;
  readonly error?: string;
}
interface Answer {
  status: number;
  retryAfter: string | null;
  body: Body | undefined;
}

async function call(url: string, method: string, body?: unknown): Promise<Answer> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: text ? (JSON.parse(text) as Body) : undefined };
}

const postOrder = (api: ShopApi, customerId = 1, amountCents = 1250) => call(`${api.url}/orders`, 'POST', { customerId, amountCents });
const setMode = (api: ShopApi, mode: string) => call(api.maintenanceUrl, 'PUT', { mode });

/** The id of the order an answer acknowledged. */
const orderId = (answer: Answer) => defined(answer.body?.id, 'the order id in the answer');

async function orderExists(admin: pg.Client, id: number): Promise<boolean> {
  return (await admin.query('select 1 from orders where id = $1', [id])).rowCount === 1;
}

/** Polls until `check` holds; the app's sessions and locks show up in the catalog asynchronously. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function appSessions(admin: pg.Client, role: string, where = 'true'): Promise<number> {
  // Inside a transaction pg_stat_activity is a snapshot taken once: drop it to see fresh rows.
  await admin.query('select pg_stat_clear_snapshot()');
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where usename = $1 and ${where}`, [role]);
  return defined(rows[0], 'the count row').n;
}

describe('shop API', () => {
  it('acknowledges a write only once it is in the table, and answers bad requests with 4xx', async () => {
    const { api, admin } = await shop();
    const first = await postOrder(api, 3, 4200);
    expect(first.status).toBe(201);
    expect(await orderExists(admin, orderId(first))).toBe(true);
    expect(await call(`${api.url}/orders/count`, 'GET')).toMatchObject({ status: 200, body: { count: 2_001 } });
    expect(await call(`${api.url}/health`, 'GET')).toMatchObject({ status: 200, body: { status: 'ok', mode: 'normal' } });

    const malformed = await call(`${api.url}/orders`, 'POST', '{"customerId": 1,');
    expect(malformed.status).toBe(400);
    expect(malformed.body?.error).toMatch(/JSON/);
    expect((await call(`${api.url}/orders`, 'POST', { customerId: 'one', amountCents: 1 })).status).toBe(400);
    expect((await call(`${api.url}/orders`, 'POST', { customerId: 1, amountCents: -5 })).status).toBe(400);
    expect(await postOrder(api, 999_999)).toMatchObject({ status: 422, body: { error: 'no such customer' } });
    expect((await call(`${api.url}/nope`, 'GET')).status).toBe(404);
    expect((await call(`${api.url}/orders`, 'GET')).status).toBe(405);
    expect((await call(api.maintenanceUrl, 'PUT', { mode: 'off' })).status).toBe(400);
    expect(api.stats()).toEqual({ acknowledged: 1, refused: 0 });
  });

  it('refuses writes with 503 and Retry-After in maintenance, and takes them again when resumed', async () => {
    const { api } = await shop();
    expect(await call(api.maintenanceUrl, 'GET')).toMatchObject({ status: 200, body: { mode: 'normal' } });
    expect(await setMode(api, 'maintenance')).toEqual({ status: 200, retryAfter: null, body: { mode: 'maintenance', inFlight: 0 } });
    expect(await call(api.maintenanceUrl, 'GET')).toMatchObject({ status: 200, body: { mode: 'maintenance' } });
    // Repeating it is harmless: the quiescer may retry.
    expect((await setMode(api, 'maintenance')).status).toBe(200);

    const refused = await postOrder(api);
    expect(refused).toMatchObject({ status: 503, retryAfter: '1', body: { written: 'no' } });
    expect(refused.body?.error).toMatch(/maintenance/);
    // Reads carry on in maintenance.
    expect(await call(`${api.url}/orders/count`, 'GET')).toMatchObject({ status: 200, body: { count: 2_000 } });

    expect(await setMode(api, 'normal')).toMatchObject({ status: 200, body: { mode: 'normal' } });
    expect((await postOrder(api)).status).toBe(201);
    expect(api.stats()).toEqual({ acknowledged: 1, refused: 1 });
  });

  it('answers PUT /maintenance only after the write already in flight has finished', async () => {
    const { api, admin, role } = await shop();
    // The insert's foreign-key check needs a KEY SHARE lock on customer 1: hold a conflicting lock.
    await admin.query('begin');
    await admin.query('select id from customers where id = 1 for update');
    const write = postOrder(api, 1);
    await eventually(async () => (await appSessions(admin, role, `wait_event_type = 'Lock'`)) === 1, 'the insert to block');

    let acknowledgedWhenPutReturned = -1;
    const put = setMode(api, 'maintenance').then((answer) => {
      acknowledgedWhenPutReturned = api.stats().acknowledged;
      return answer;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(acknowledgedWhenPutReturned).toBe(-1); // still waiting for the write
    expect(await call(api.maintenanceUrl, 'GET')).toMatchObject({ body: { mode: 'maintenance', inFlight: 1 } });
    expect((await postOrder(api, 2)).status).toBe(503); // new writes are refused meanwhile

    await admin.query('commit');
    const [written, quiet] = await Promise.all([write, put]);
    expect(written.status).toBe(201);
    expect(quiet).toEqual({ status: 200, retryAfter: null, body: { mode: 'maintenance', inFlight: 0 } });
    expect(acknowledgedWhenPutReturned).toBe(1);
    expect(await orderExists(admin, orderId(written))).toBe(true);
  });

  it('answers 503, never 500, while its role is locked out, and writes again once it may log in', async () => {
    const { api, admin, role, log } = await shop();
    expect((await postOrder(api)).status).toBe(201); // the pool now holds an idle session
    const r = escapeIdentifier(role);
    await admin.query(`alter role ${r} nologin`);
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [role]);
    await eventually(async () => (await appSessions(admin, role)) === 0, 'the app sessions to end');

    for (let i = 0; i < 3; i++) {
      const answer = await postOrder(api);
      expect(answer).toMatchObject({ status: 503, retryAfter: '1' });
      expect(answer.body?.error).toMatch(/database unavailable/);
    }
    expect((await call(`${api.url}/orders/count`, 'GET')).status).toBe(503);
    expect((await call(`${api.url}/health`, 'GET')).status).toBe(503);
    expect(log.join('\n')).not.toMatch(/internal error/);

    await admin.query(`alter role ${r} login`);
    const again = await postOrder(api);
    expect(again.status).toBe(201);
    expect(await orderExists(admin, orderId(again))).toBe(true);
    expect(api.stats()).toEqual({ acknowledged: 2, refused: 3 });
  });

  it('does not acknowledge a write whose session is ended mid-statement', async () => {
    const { api, admin, role } = await shop();
    await admin.query('begin');
    await admin.query('select id from customers where id = 1 for update');
    const write = postOrder(api, 1);
    await eventually(async () => (await appSessions(admin, role, `wait_event_type = 'Lock'`)) === 1, 'the insert to block');
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and wait_event_type = 'Lock'`, [role]);
    const answer = await write;
    await admin.query('commit');
    expect(answer).toMatchObject({ status: 503, retryAfter: '1', body: { written: 'unknown' } });
    expect((await postOrder(api, 1)).status).toBe(201); // the dead client was discarded, not reused
  });
});

/** The API as its own process, as people run it (examples/api/main.ts): a crash there ends the process. */
interface ApiProcess {
  readonly url: string;
  readonly maintenanceUrl: string;
  /** Everything it wrote to stderr so far. */
  output(): string;
  /** null while it runs; its exit code (or signal) once it has exited. */
  exited(): string | null;
  /** SIGTERM, then waits for it to exit (it lets writes in flight finish). */
  stop(): Promise<void>;
}

async function startApiProcess(args: readonly string[], env: Record<string, string> = {}): Promise<ApiProcess> {
  const child = spawn(TSX, [API_MAIN, '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  let exit: string | null = null;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = signal ?? String(code);
      resolve();
    }),
  );
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const stop = async () => {
    if (exit === null) child.kill('SIGTERM');
    await gone;
  };
  cleanups.push(stop);
  const until = Date.now() + 30_000;
  // Read through a function: `exit` is set by the exit handler, which the loop below cannot see.
  const exited = (): string | null => exit;
  let url: string | undefined;
  while (!(url = /shop API on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1])) {
    const code = exited();
    if (code !== null) throw new Error(`the API exited (${code}) before it listened:\n${output}`);
    if (Date.now() > until) throw new Error(`the API did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, maintenanceUrl: `${url}/maintenance`, output: () => output, exited, stop };
}

describe('shop API process', () => {
  it('keeps running and never loses an acknowledged write while its sessions are killed again and again', async () => {
    const { admin, role, appUrl } = await shop();
    const api = await startApiProcess(['--database-url', appUrl]);
    const problems: string[] = [];
    const writer = startWriter({ apiUrl: api.url, concurrency: 8, customers: 20, maxRetryWaitMs: 20, log: (l) => problems.push(l) });
    cleanups.push(() => writer.stop());
    // Kill every session of the app role, as a swap or a restore does, ~every 15 ms for 6 s: new
    // sessions are ended at every stage (connecting, idle in the pool, mid-insert, just handed out).
    let kills = 0;
    const until = Date.now() + 6_000;
    while (Date.now() < until && api.exited() === null) {
      const { rows } = await admin.query<{ n: number }>(
        'select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity where usename = $1',
        [role],
      );
      kills += defined(rows[0], 'the kill count').n;
      await new Promise((r) => setTimeout(r, 15));
    }
    expect(api.exited(), api.output()).toBeNull();
    await eventually(async () => (await call(`${api.url}/health`, 'GET')).status === 200, 'the API to reach the database again');
    const report = await writer.stop();
    expect(api.exited(), api.output()).toBeNull();
    expect(kills).toBeGreaterThan(20);
    expect(report.acknowledgedIds.length).toBeGreaterThan(0);
    expect(report.refused).toBeGreaterThan(0);
    expect({ errors: report.errors, problems }).toEqual({ errors: 0, problems: [] });
    const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from orders where id = any($1::bigint[])', [report.acknowledgedIds]);
    expect(rows[0]?.n).toBe(report.acknowledgedIds.length);
  }, 60_000);

  it('comes back in maintenance after a restart when its state file says so', async () => {
    const { admin, appUrl } = await shop();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shop-api-state-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const stateFile = path.join(dir, 'mode.json');
    const count = async () => defined((await admin.query<{ n: number }>('select count(*)::int as n from orders')).rows[0], 'the count row').n;

    const first = await startApiProcess(['--database-url', appUrl, '--state-file', stateFile]);
    expect(await call(first.maintenanceUrl, 'GET')).toMatchObject({ status: 200, body: { mode: 'normal' } });
    expect(await call(first.maintenanceUrl, 'PUT', { mode: 'maintenance' })).toMatchObject({ status: 200, body: { mode: 'maintenance' } });
    await first.stop();
    const before = await count();

    // The same file through the environment variable this time.
    const second = await startApiProcess(['--database-url', appUrl], { SHOP_API_STATE_FILE: stateFile });
    expect(await call(second.maintenanceUrl, 'GET')).toMatchObject({ status: 200, body: { mode: 'maintenance' } });
    expect(await call(`${second.url}/orders`, 'POST', { customerId: 1, amountCents: 100 })).toMatchObject({
      status: 503,
      retryAfter: '1',
      body: { written: 'no' },
    });
    expect(await count()).toBe(before);
    expect(await call(second.maintenanceUrl, 'PUT', { mode: 'normal' })).toMatchObject({ status: 200, body: { mode: 'normal' } });
    expect((await call(`${second.url}/orders`, 'POST', { customerId: 1, amountCents: 100 })).status).toBe(201);
    await second.stop();

    const third = await startApiProcess(['--database-url', appUrl, '--state-file', stateFile]);
    expect(await call(third.maintenanceUrl, 'GET')).toMatchObject({ body: { mode: 'normal' } });
    // Written through a temporary file and a rename: none is left behind.
    expect(await readdir(dir)).toEqual(['mode.json']);
  });
});

describe('shop API state file', () => {
  it('refuses to start when the file does not hold a mode, rather than guessing normal', async () => {
    const { appUrl } = await shop();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shop-api-state-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const stateFile = path.join(dir, 'mode.json');
    await writeFile(stateFile, '{"mode":"mainten');
    await expect(startShopApi({ databaseUrl: appUrl, stateFile })).rejects.toThrow(/does not hold \{"mode"/);
  });

  it('starts in normal without a file, records each PUT before answering, and starts in what it recorded', async () => {
    const { appUrl } = await shop();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shop-api-state-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const stateFile = path.join(dir, 'nested', 'mode.json');
    const recorded = async () => (JSON.parse(await readFile(stateFile, 'utf8')) as { mode?: unknown }).mode;
    const api = await startShopApi({ databaseUrl: appUrl, stateFile });
    expect(api.startMode).toBe('normal');
    expect(await recorded()).toBe('normal');
    // Overlapping PUTs: whichever the gate ends in is the one on file.
    await Promise.all(Array.from({ length: 10 }, (_, i) => setMode(api, i % 2 ? 'normal' : 'maintenance')));
    expect(await recorded()).toBe(defined((await call(api.maintenanceUrl, 'GET')).body, 'the maintenance answer').mode);
    expect((await setMode(api, 'maintenance')).status).toBe(200);
    expect(await recorded()).toBe('maintenance');
    await api.close();
    const again = await startShopApi({ databaseUrl: appUrl, stateFile });
    cleanups.push(() => again.close());
    expect(again.startMode).toBe('maintenance');
    expect((await postOrder(again)).status).toBe(503);
  });
});

describe('classifyDbFailure', () => {
  const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it.each([
    [err('57P01'), 'query', { kind: 'unavailable', written: 'unknown' }],
    [err('57P01'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('28000'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('28P01'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('3D000'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('57P03'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('55006'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('08006'), 'query', { kind: 'unavailable', written: 'unknown' }],
    [err('ECONNREFUSED'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('ECONNRESET'), 'query', { kind: 'unavailable', written: 'unknown' }],
    [new Error('Connection terminated unexpectedly'), 'query', { kind: 'unavailable', written: 'unknown' }],
    [new Error('timeout exceeded when trying to connect'), 'connect', { kind: 'unavailable', written: 'no' }],
    [err('23503'), 'query', { kind: 'rejected' }],
    [err('42P01'), 'query', { kind: 'internal' }],
    [new Error('boom'), 'query', { kind: 'internal' }],
  ] as const)('%s during %s → %o', (error, phase, expected) => {
    expect(classifyDbFailure(error, phase)).toMatchObject(expected);
  });
});
