import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureEmbeddedServer } from '../../src/adapters/local/embedded-postgres.ts';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../../src/adapters/local/local-workflows.ts';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import type { Logger } from '../../src/core/logger.ts';
import { startShopApi } from '../api/server.ts';
import { startWriter, type WriterReport } from '../load/writer.ts';
import { seedShop } from '../seed/seed-shop.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIGRATIONS = path.resolve(HERE, '../migrations');
const VERIFY = path.resolve(HERE, '../verify');
const DATABASE = 'shop_demo';
const ROLE = 'shop_demo_app';
const CUSTOMERS = 1000;

/** What the demo did, for the text a person reads and for `--json`. */
export interface DemoReport {
  readonly database: string;
  readonly rows: number;
  readonly upgrades: readonly WorkflowReport[];
  readonly writes: { readonly acknowledged: number; readonly present: number; readonly refused: number; readonly errors: number };
  /** True when the first upgrade succeeded, the second rolled back, and every acknowledged write is present. */
  readonly asExpected: boolean;
}

/**
 * The demo: a shop with 100,000 orders on the embedded PostgreSQL, its HTTP API kept busy by a writer,
 * and two upgrades while it writes: one that succeeds, and one whose migration fails on the real data
 * and is rolled back. Then it counts the writes the API acknowledged against the rows present.
 */
export async function runDemo(log: Logger, onState: (run: string, state: string) => void, options: { serverUrl?: string } = {}): Promise<DemoReport> {
  let serverUrl = options.serverUrl;
  if (!serverUrl) {
    log.info('starting the embedded PostgreSQL (the first run creates it in .safeshift/pg)...');
    serverUrl = (await ensureEmbeddedServer({ log: (l) => log.info(l) })).url;
  }
  const server = { url: serverUrl };
  const appPassword = randomBytes(16).toString('hex');
  log.info(`seeding ${DATABASE}: ${CUSTOMERS} customers, 100,000 orders (schema version 2)...`);
  const shop = await seedShop({ serverUrl: server.url, database: DATABASE, appRole: ROLE, appPassword, migrationsDir: MIGRATIONS, customers: CUSTOMERS });
  const api = await startShopApi({ databaseUrl: shop.appUrl });
  log.info(`example API on ${api.url}, maintenance endpoint ${api.maintenanceUrl}; a writer starts posting orders`);
  const writer = startWriter({ apiUrl: api.url, concurrency: 4, customers: CUSTOMERS, log: (l) => log.warn(l) });
  const failingDir = await mkdtemp(path.join(os.tmpdir(), 'safeshift-demo-'));
  const upgrades: WorkflowReport[] = [];
  let writes: WriterReport | undefined;
  try {
    await pause(500);
    const quiesce = [`http:${api.maintenanceUrl}`, `db-role:${ROLE}`];
    const first = await openLocalPorts({ serverUrl: server.url, database: DATABASE, migrationsDir: MIGRATIONS, verifyDir: VERIFY, log });
    try {
      log.info('\nupgrade 1: to version 3 (rehearse on a clone, quiesce, snapshot, migrate, verify, resume)');
      upgrades.push(
        await runWorkflow(
          first,
          { kind: 'upgrade', database: DATABASE, targetVersion: '3', quiesce, rehearsal: true },
          { onState: (s) => onState('upgrade 1', s) },
        ),
      );
    } finally {
      await first.close();
    }
    await pause(500);
    await cp(MIGRATIONS, failingDir, { recursive: true });
    for (const file of ['V4__orders_add_note.sql', 'V5__orders_amount_positive.sql']) await cp(path.join(HERE, file), path.join(failingDir, file));
    const second = await openLocalPorts({ serverUrl: server.url, database: DATABASE, migrationsDir: failingDir, verifyDir: VERIFY, log });
    try {
      log.info(
        "\nupgrade 2: to version 5; V4 applies, V5's CHECK fails on real rows. Rehearsal is skipped so the failure reaches production,\n" +
          'which is restored from the pre-upgrade snapshot (with the rehearsal, the upgrade would have been refused before any downtime)',
      );
      upgrades.push(await runWorkflow(second, { kind: 'upgrade', database: DATABASE, quiesce, rehearsal: false }, { onState: (s) => onState('upgrade 2', s) }));
    } finally {
      await second.close();
    }
    await pause(500);
  } finally {
    writes = await writer.stop();
    await api.close();
    await rm(failingDir, { recursive: true, force: true });
  }
  const present = await countPresent(withDatabase(server.url, DATABASE), writes.acknowledgedIds);
  const report = {
    database: DATABASE,
    rows: shop.rows,
    upgrades,
    writes: { acknowledged: writes.acknowledgedIds.length, present, refused: writes.refused, errors: writes.errors },
  };
  const asExpected =
    upgrades[0]?.run.status === 'succeeded' && upgrades[1]?.run.status === 'rolled-back' && present === writes.acknowledgedIds.length && writes.errors === 0;
  return { ...report, asExpected };
}

async function countPresent(url: string, ids: readonly number[]): Promise<number> {
  const client = await connectPg(url);
  try {
    const { rows } = await client.query<{ n: number }>('select count(*)::int as n from orders where id = any($1::bigint[])', [ids]);
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
