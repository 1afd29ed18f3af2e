import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Writer, WriterReport } from '../../examples/load/writer.ts';
import { dropShop } from '../../examples/seed/drop-shop.ts';
import { seedShop } from '../../examples/seed/seed-shop.ts';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { testServerUrl } from './database.ts';
import { defined } from './defined.ts';
import { startChild, type IpcChild } from './ipc-child.ts';
import { dropRunResources } from './run-resources.ts';
import { EXAMPLE_MIGRATIONS } from './shop.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const API_CHILD = path.join(HERE, 'shop-api-child.ts');
const WRITER_CHILD = path.join(HERE, 'load-writer-child.ts');

/** Writes the API acknowledged (201) and refused (503). */
export interface WriteCounts {
  readonly acknowledged: number;
  readonly refused: number;
}

/** The shop's HTTP API, running in a process of its own (test/support/shop-api-child.ts). */
export interface BusyShopApi {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** What safeshift's `http:` quiescer is pointed at. */
  readonly maintenanceUrl: string;
  /** Writes acknowledged and refused since the shop started, across restarts of the API. */
  stats(): Promise<WriteCounts>;
  /** Resolves once at least `atLeast` writes have been acknowledged in all; rejects after `timeoutMs`. */
  acknowledged(atLeast: number, timeoutMs?: number): Promise<WriteCounts>;
}

/** A seeded shop of its own (database and role: roles are cluster-wide) with its HTTP API running. */
export interface BusyShop {
  readonly database: string;
  readonly appRole: string;
  readonly customers: number;
  readonly api: BusyShopApi;
  /** The quiescer specs that stop this shop's writes: its maintenance endpoint, then its role. */
  readonly quiesce: readonly string[];
  /** A superuser session on the shop database, new each time (runs end sessions on it). */
  withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>;
  /**
   * Starts the load writer against the API, in a process of its own (test/support/load-writer-child.ts).
   * Its unexpected answers are appended to `log` when it is stopped, before `stop()` resolves.
   */
  startWriter(log: string[]): Writer;
  /**
   * Stops the API and starts it again on the same port with no state file, so it comes back in
   * `normal` mode: what an app restarted by a deploy mid-upgrade does. The writers go on against it.
   */
  restartApi(): Promise<void>;
  /** Stops any writer and the API, drops the shop, its role, the snapshots runs kept, and its ledger rows. */
  dispose(): Promise<void>;
}

/** Longest the API is waited for to acknowledge writes, by default: generous, a run on a busy machine is slow. */
const ACKNOWLEDGED_TIMEOUT_MS = 60_000;

/**
 * Seeds a shop with `orders` orders (about 1% of them free), starts the example API as the app role
 * in a child process. The API and each writer run in processes of their own, so neither waits on the
 * event loop of the test, where the workflow runs: what they see of the upgrade is what a real app
 * and its clients would see.
 *
 * @example
 * ```ts
 * const shop = await busyShop({ orders: 5_000 });
 * try { const w = shop.startWriter([]); await shop.api.acknowledged(50); ...; await w.stop(); } finally { await shop.dispose(); }
 * ```
 */
export async function busyShop(opts: { readonly orders: number; readonly customers?: number; readonly prefix?: string }): Promise<BusyShop> {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const serverUrl = testServerUrl();
  const database = `${opts.prefix ?? 'busy'}_${tag}`;
  const appRole = `busy_app_${tag}`;
  const customers = opts.customers ?? 50;
  const writers: Writer[] = [];
  let apiChild: IpcChild<{ url: string; maintenanceUrl: string }> | undefined;
  const dispose = async () => {
    await Promise.allSettled(writers.map((w) => w.stop()));
    await apiChild?.finish('close').catch(() => apiChild?.kill());
    // Snapshots first: they hold grants to the role, which cannot be dropped while any remain.
    await dropRunResources(database);
    await dropShop({ serverUrl, database, appRole });
  };
  try {
    const { appUrl } = await seedShop({
      serverUrl,
      database,
      appRole,
      appPassword: randomBytes(12).toString('hex'),
      migrationsDir: EXAMPLE_MIGRATIONS,
      customers,
      orders: opts.orders,
    });
    apiChild = await startChild(API_CHILD, [appUrl], 'shop API');
  } catch (error) {
    await dispose();
    throw error;
  }
  const child = apiChild;
  const api: BusyShopApi = {
    url: child.ready.url,
    maintenanceUrl: child.ready.maintenanceUrl,
    stats: () => child.request<WriteCounts>('stats'),
    acknowledged: (atLeast, timeoutMs = ACKNOWLEDGED_TIMEOUT_MS) => child.request<WriteCounts>('acknowledged', { atLeast, timeoutMs }),
  };
  return {
    database,
    appRole,
    customers,
    api,
    quiesce: [`http:${api.maintenanceUrl}`, `db-role:${appRole}`],
    async withClient(fn) {
      const client = await connectPg(withDatabase(serverUrl, database), { applicationName: 'safeshift-test' });
      try {
        return await fn(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async restartApi() {
      await child.request('restart');
    },
    startWriter(log) {
      const writer = writerProcess(api.url, customers, log);
      writers.push(writer);
      return writer;
    },
    dispose,
  };
}

/** The example writer (4 loops) in a child process; `stop()` ends it and reports what it saw. */
function writerProcess(apiUrl: string, customers: number, log: string[]): Writer {
  const started = startChild<null>(WRITER_CHILD, [JSON.stringify({ apiUrl, concurrency: 4, customers })], 'load writer');
  // Stopping before it has started still waits for it, so its report is never lost.
  started.catch(() => undefined);
  let report: Promise<WriterReport> | undefined;
  return {
    stop() {
      report ??= (async () => {
        const child = await started;
        const answer = await child.finish<{ report: WriterReport; log: string[] }>('stop');
        const { log: lines, report: seen } = defined(answer, "the load writer's answer to stop");
        log.push(...lines);
        return seen;
      })();
      return report;
    },
  };
}

/** How many of the writer's acknowledged ids are in the orders table (all of them, or a write was lost). */
export async function acknowledgedPresent(client: pg.Client, report: WriterReport): Promise<number> {
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from orders where id = any($1::bigint[])', [report.acknowledgedIds]);
  return defined(rows[0], 'the count row').n;
}
