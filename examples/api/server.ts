import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { classifyDbFailure, type DbFailure, type FailurePhase } from './db-failure.ts';
import { readModeFile, writeModeFile } from './mode-file.ts';
import { WriteGate, type ApiMode } from './write-gate.ts';

export interface ShopApiOptions {
  /** The app role's URL on the shop database (`seedShop` returns it). */
  readonly databaseUrl: string;
  /** 0 picks a free port. @default 0 */
  readonly port?: number;
  /** Only the loopback interface: the example has no authentication. @default '127.0.0.1' */
  readonly host?: '127.0.0.1';
  /** How long `PUT /maintenance` waits for writes in flight before giving up with 503. @default 30000 */
  readonly drainTimeoutMs?: number;
  /**
   * A file where the API records its mode on every `PUT /maintenance`, before answering, and reads it
   * back at start, so an API restarted mid-upgrade comes back in `maintenance` rather than taking
   * writes while safeshift believes it quiet. Give one whenever safeshift quiesces this API. A file
   * that exists but does not hold a mode makes the start fail (fix or delete it).
   * @default none: the mode lives in memory only and every start is in `normal`
   */
  readonly stateFile?: string;
  /** Where the API reports trouble (never a password). @default silent */
  readonly log?: (line: string) => void;
}

export interface ShopApi {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `<url>/maintenance`: what safeshift's `http:` quiescer is pointed at. */
  readonly maintenanceUrl: string;
  /** Stops taking requests, lets those in flight finish and closes the pool. */
  close(): Promise<void>;
  /** The mode it started in: `maintenance` when its state file said so. */
  readonly startMode: ApiMode;
  /** Writes acknowledged (201) and refused (503) since start. */
  stats(): { acknowledged: number; refused: number };
}

const RETRY_AFTER_SECONDS = '1';
const MAX_BODY_BYTES = 64 * 1024;
const MAX_INT4 = 2_147_483_647;
const INSERT_ORDER = 'insert into orders (customer_id, amount_cents) values ($1, $2) returning id';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * Starts the example shop's HTTP API, the app safeshift upgrades while it is being written to.
 *
 * Endpoints:
 * - `POST /orders` `{"customerId": 1, "amountCents": 1250}` → `201 {"id": 42}`, sent only once the
 *   insert has committed: a 201 is the acknowledgement that the order is durable. `400` for a body
 *   that is not JSON or not an order, `422` for one the database rejects (unknown customer).
 * - `GET /orders/count` → `200 {"count": n}`; `GET /health` → `200 {"status":"ok","mode":…}`, or
 *   `503` when the database cannot be reached.
 *
 * Maintenance protocol (safeshift's `http:` quiescer is the client; keep the two in step):
 * - `GET /maintenance` → `200 {"mode":"normal"|"maintenance","inFlight":n}`.
 * - `PUT /maintenance` `{"mode":"maintenance"}` → refuses new writes at once, then waits until every
 *   write already admitted has finished (committed or failed) and only then answers
 *   `200 {"mode":"maintenance","inFlight":0}`. After that 200 the API writes nothing until resumed.
 *   Idempotent: repeating it waits again. If writes are still running after `drainTimeoutMs` it
 *   answers `503 {"mode":"maintenance","inFlight":n,"error":…}` with `Retry-After` (still in
 *   maintenance; the client may PUT again); if a `{"mode":"normal"}` arrives meanwhile, `409`.
 * - `PUT /maintenance` `{"mode":"normal"}` → takes writes again, `200 {"mode":"normal","inFlight":n}`.
 * - A bad body → `400`. Any other method → `405` with `Allow`.
 * - With `stateFile`, each PUT records the mode there (atomically) before it answers, and a restart
 *   comes back in the mode last recorded. If it cannot be recorded the PUT answers `500`; a switch to
 *   maintenance still holds in memory (refusing writes is the safe side), a switch to normal does not
 *   happen. Without `stateFile` every start is in `normal`.
 *
 * A write is never silently dropped: in maintenance, and whenever the database refuses or loses the
 * connection (role locked out, sessions ended, database being snapshotted or swapped), the answer is
 * `503` with `Retry-After: 1` and a JSON body `{"error":…,"written":"no"|"unknown"}`. `"unknown"`
 * means the statement was sent and the connection died before the answer: it may have committed, so
 * it is not acknowledged. Never a 500 for those, never a 201 for a write that did not commit.
 *
 * @example
 * ```ts
 * const api = await startShopApi({ databaseUrl: appUrl });
 * await fetch(`${api.url}/orders`, { method: 'POST', body: JSON.stringify({ customerId: 1, amountCents: 500 }) });
 * await fetch(api.maintenanceUrl, { method: 'PUT', body: '{"mode":"maintenance"}' }); // returns once quiet
 * await api.close();
 * ```
 */
export async function startShopApi(opts: ShopApiOptions): Promise<ShopApi> {
  const log = opts.log ?? (() => {});
  const drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
  const stateFile = opts.stateFile;
  // Read before anything listens: a request must never see a mode the file contradicts.
  const startMode = stateFile === undefined ? 'normal' : ((await readModeFile(stateFile)) ?? 'normal');
  // Recording the first mode now finds an unwritable path at start, not in the middle of a quiesce.
  if (stateFile !== undefined) await writeModeFile(stateFile, startMode);
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: 10,
    application_name: 'shop-api',
    // Bounded waits keep a write from staying "in flight" for ever, which would hold up a quiesce.
    connectionTimeoutMillis: 5_000,
    statement_timeout: 15_000,
    idleTimeoutMillis: 10_000,
  });
  // safeshift ends the app's sessions at any moment (quiesce, snapshot, swap, restore), so every
  // 'error' a client or the pool can emit must have a listener, or EventEmitter throws it and the
  // process dies. pg-pool listens on a client only while it is idle, and re-emits its error on the
  // pool: listened to here. A checked-out client has no listener of the pool's, and a new client is
  // handed out with none: when the server's FATAL (57P01) arrives in the same read as the
  // ReadyForQuery that completes the connection, the client emits it before `await pool.connect()`
  // has resumed. 'connect' is emitted before the client is handed out, so a listener attached there
  // covers every client for its whole life. The statement in flight still fails with the error, and a
  // client whose connection broke is not queryable, so release() discards it instead of reusing it.
  const lost = new WeakSet();
  const reportLost = (error: Error, client: object | undefined) => {
    // One session's end comes as several errors (the FATAL, then the socket closing): log it once.
    if (client !== undefined) {
      if (lost.has(client)) return;
      lost.add(client);
    }
    log(`database session lost: ${classifyDbFailure(error, 'connect').reason}`);
  };
  pool.on('error', (error, client) => reportLost(error, client));
  pool.on('connect', (client) => client.on('error', (error) => reportLost(error, client)));

  const gate = new WriteGate(startMode);
  if (startMode === 'maintenance') log(`starting in maintenance, as recorded in ${stateFile}: writes get 503 until PUT {"mode":"normal"}`);
  const counters = { acknowledged: 0, refused: 0 };

  async function insertOrder(customerId: number, amountCents: number): Promise<number> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw failure(error, 'connect');
    }
    // The client's 'error' listener is the one attached on the pool's 'connect' (see above).
    let failed: unknown;
    try {
      // One autocommit statement: pg resolves it only on ReadyForQuery, which the server sends
      // after the implicit transaction has committed, so a result here means the row is durable.
      const result = await client.query<{ id: string }>(INSERT_ORDER, [customerId, amountCents]);
      const row = result.rows[0];
      if (!row) throw new Error('the insert returned no row');
      return Number(row.id);
    } catch (error) {
      failed = error;
      throw failure(error, 'query');
    } finally {
      // Passing the error makes the pool discard the client rather than hand a dead one out again.
      client.release(failed !== undefined);
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = ROUTES[path];
    if (!route) throw new HttpError(404, `no such endpoint: ${path}`);
    const method = req.method ?? 'GET';
    if (!route.includes(method)) {
      res.setHeader('Allow', route.join(', '));
      throw new HttpError(405, `${method} is not allowed on ${path}`);
    }
    const key = `${method} ${path}`;
    if (key === 'POST /orders') return postOrder(req, res);
    if (key === 'GET /orders/count') {
      const { rows } = await pool.query<{ count: string }>('select count(*) as count from orders').catch((e: unknown) => {
        throw failure(e, 'query');
      });
      const row = rows[0];
      if (!row) throw new Error('count(*) returned no row');
      send(res, 200, { count: Number(row.count) });
      return;
    }
    if (key === 'GET /health') {
      try {
        await pool.query('select 1');
      } catch (error) {
        throw failure(error, 'query');
      }
      send(res, 200, { status: 'ok', mode: gate.mode });
      return;
    }
    if (key === 'GET /maintenance') {
      send(res, 200, { mode: gate.mode, inFlight: gate.inFlight });
      return;
    }
    return putMaintenance(req, res);
  }

  async function postOrder(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req);
    const order = parseOrder(body);
    // Checked after the body is read, in the same tick as the count: a write admitted here is one
    // a concurrent PUT /maintenance will wait for.
    if (!gate.tryEnter()) {
      counters.refused += 1;
      send(res, 503, { error: 'the shop is in maintenance; try again shortly', written: 'no' }, true);
      return;
    }
    try {
      const id = await insertOrder(order.customerId, order.amountCents);
      counters.acknowledged += 1;
      send(res, 201, { id });
    } finally {
      gate.leave();
    }
  }

  // Mode changes take turns, each changing the gate and recording it together, so the file ends up
  // holding the mode the gate was last put in even when PUTs overlap.
  let modeTurn: Promise<unknown> = Promise.resolve();
  function changeMode(change: () => Promise<void>): Promise<void> {
    const turn = modeTurn.then(change);
    modeTurn = turn.catch(() => undefined);
    return turn;
  }

  async function record(mode: ApiMode): Promise<void> {
    if (stateFile === undefined) return;
    try {
      await writeModeFile(stateFile, mode);
    } catch (error) {
      log(`could not record mode ${mode} in ${stateFile}: ${error instanceof Error ? error.message : String(error)}`);
      throw new HttpError(500, `could not record mode ${mode} in the state file; still in ${gate.mode}`);
    }
  }

  async function putMaintenance(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req);
    const mode = (body as { mode?: unknown } | null)?.mode;
    if (mode !== 'maintenance' && mode !== 'normal') throw new HttpError(400, 'expected {"mode":"maintenance"} or {"mode":"normal"}');
    if (mode === 'normal') {
      // Recorded first: a crash in between restarts in maintenance, the safe side.
      await changeMode(async () => {
        await record('normal');
        gate.resume();
      });
      log('maintenance off: taking writes');
      send(res, 200, { mode: gate.mode, inFlight: gate.inFlight });
      return;
    }
    // Writes are refused at once, before the file is written; the 200 waits for both.
    await changeMode(async () => {
      gate.refuse();
      await record('maintenance');
    });
    log(`maintenance on: refusing writes, waiting for ${gate.inFlight} in flight`);
    const drained = await gate.drain(drainTimeoutMs);
    if (drained === 'drained') {
      send(res, 200, { mode: 'maintenance' satisfies ApiMode, inFlight: 0 });
      return;
    }
    if (drained === 'resumed') {
      send(res, 409, { mode: gate.mode, inFlight: gate.inFlight, error: 'switched back to normal before the writes in flight finished' });
      return;
    }
    send(res, 503, { mode: gate.mode, inFlight: gate.inFlight, error: `writes still in flight after ${drainTimeoutMs} ms; PUT again to keep waiting` }, true);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return;
      if (error instanceof HttpError) return send(res, error.status, { error: error.message });
      if (error instanceof FailureError) {
        const f = error.failure;
        if (f.kind === 'unavailable') {
          // `written` only means something for a write; a read just gets told to come back.
          const isWrite = req.method === 'POST';
          if (isWrite) counters.refused += 1;
          return send(res, 503, { error: `database unavailable: ${f.reason}`, ...(isWrite ? { written: f.written } : {}) }, true);
        }
        if (f.kind === 'rejected') return send(res, 422, { error: f.reason });
        log(`internal error: ${f.reason}`);
      } else {
        log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      }
      send(res, 500, { error: 'internal error' });
    });
  });

  const port = opts.port ?? 0;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    maintenanceUrl: `${url}/maintenance`,
    startMode,
    stats: () => ({ ...counters }),
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // A client holding a connection open must not keep the process alive for ever.
        const force = setTimeout(() => server.closeAllConnections(), 5_000);
        await gate.idle();
        await closed;
        clearTimeout(force);
        await pool.end();
      })();
      return closing;
    },
  };
}

/** Methods each path answers; anything else is a 405. */
const ROUTES: Record<string, string[]> = {
  '/orders': ['POST'],
  '/orders/count': ['GET'],
  '/health': ['GET'],
  '/maintenance': ['GET', 'PUT'],
};

/** Carries a classified database failure up to the one place that turns it into a status. */
class FailureError extends Error {
  constructor(readonly failure: DbFailure) {
    super(failure.reason);
    this.name = 'FailureError';
  }
}

function failure(error: unknown, phase: FailurePhase): FailureError {
  return new FailureError(classifyDbFailure(error, phase));
}

function parseOrder(body: unknown): { customerId: number; amountCents: number } {
  const { customerId, amountCents } = (body ?? {}) as { customerId?: unknown; amountCents?: unknown };
  if (!isInt(customerId) || customerId < 1) throw new HttpError(400, 'customerId must be a positive whole number');
  if (!isInt(amountCents) || amountCents < 0) throw new HttpError(400, 'amountCents must be a whole number of cents, 0 or more');
  return { customerId, amountCents };
}

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value <= MAX_INT4;
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, retry = false): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  if (retry) res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
  res.end(text);
}
