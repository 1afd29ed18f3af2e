import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { startShopApi, type ShopApi } from '../../examples/api/server.ts';
import { startWriter, type Writer, type WriterReport } from '../../examples/load/writer.ts';
import { dropShop } from '../../examples/seed/drop-shop.ts';
import { seedShop } from '../../examples/seed/seed-shop.ts';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { testServerUrl } from './database.ts';
import { dropRunResources } from './run-resources.ts';
import { EXAMPLE_MIGRATIONS } from './shop.ts';

/** A seeded shop of its own (database and role: roles are cluster-wide) with its HTTP API running. */
export interface BusyShop {
  readonly database: string;
  readonly appRole: string;
  readonly customers: number;
  readonly api: ShopApi;
  /** The quiescer specs that stop this shop's writes: its maintenance endpoint, then its role. */
  readonly quiesce: readonly string[];
  /** A superuser session on the shop database, new each time (runs end sessions on it). */
  withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>;
  /** Starts the load writer against the API; its unexpected answers go to `log`. */
  startWriter(log: string[]): Writer;
  /**
   * Stops the API and starts it again on the same port with no state file, so it comes back in
   * `normal` mode: what an app restarted by a deploy mid-upgrade does. The writers go on against it.
   */
  restartApi(): Promise<void>;
  /** Stops any writer and the API, drops the shop, its role, the snapshots runs kept, and its ledger rows. */
  dispose(): Promise<void>;
}

/**
 * Seeds a shop with `orders` orders (about 1% of them free), starts the example API as the app role.
 *
 * @example
 * ```ts
 * const shop = await busyShop({ orders: 5_000 });
 * try { const w = shop.startWriter([]); ...; await w.stop(); } finally { await shop.dispose(); }
 * ```
 */
export async function busyShop(opts: { readonly orders: number; readonly customers?: number; readonly prefix?: string }): Promise<BusyShop> {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const serverUrl = testServerUrl();
  const database = `${opts.prefix ?? 'busy'}_${tag}`;
  const appRole = `busy_app_${tag}`;
  const customers = opts.customers ?? 50;
  const writers: Writer[] = [];
  let api: ShopApi | undefined;
  let appUrl = '';
  const dispose = async () => {
    await Promise.allSettled(writers.map((w) => w.stop()));
    await api?.close().catch(() => undefined);
    // Snapshots first: they hold grants to the role, which cannot be dropped while any remain.
    await dropRunResources(database);
    await dropShop({ serverUrl, database, appRole });
  };
  try {
    ({ appUrl } = await seedShop({
      serverUrl, database, appRole, appPassword: randomBytes(12).toString('hex'), migrationsDir: EXAMPLE_MIGRATIONS, customers, orders: opts.orders,
    }));
    api = await startShopApi({ databaseUrl: appUrl });
  } catch (error) {
    await dispose();
    throw error;
  }
  const started = api;
  return {
    database, appRole, customers, api: started,
    quiesce: [`http:${started.maintenanceUrl}`, `db-role:${appRole}`],
    async withClient(fn) {
      const client = await connectPg(withDatabase(serverUrl, database), { applicationName: 'safeshift-test' });
      try {
        return await fn(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async restartApi() {
      const port = Number(new URL(started.url).port);
      await api?.close();
      api = await startShopApi({ databaseUrl: appUrl, port });
    },
    startWriter(log) {
      const writer = startWriter({ apiUrl: started.url, concurrency: 4, customers, log: (l) => log.push(l) });
      writers.push(writer);
      return writer;
    },
    dispose,
  };
}

/** How many of the writer's acknowledged ids are in the orders table (all of them, or a write was lost). */
export async function acknowledgedPresent(client: pg.Client, report: WriterReport): Promise<number> {
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from orders where id = any($1::bigint[])', [report.acknowledgedIds]);
  return rows[0]!.n;
}
