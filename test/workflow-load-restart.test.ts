import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { runStep } from '../src/steps/registry.ts';
import type { WriterReport } from '../examples/load/writer.ts';
import { acknowledgedPresent, busyShop, type BusyShop } from './support/busy-shop.ts';
import { testServerUrl } from './support/database.ts';
import { InjectedFault } from './support/fault-matrix.ts';
import { remainingDatabases } from './support/run-resources.ts';
import { EXAMPLE_MIGRATIONS } from './support/shop.ts';

/**
 * The API restarted mid-upgrade, under load: it is quiesced by its maintenance endpoint only, and a
 * deploy restarts it in `normal` mode, so it takes writes again while the run believes it stopped.
 * Today's promise: no acknowledged write is lost, whether the restart comes before production changes
 * (the run stops and rolls back) or after (the run stops for an operator and restores nothing).
 */
const ORDERS = 2_000;
const UPGRADE_TIMEOUT_MS = 180_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<unknown>)[] = [];
const made: string[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  expect(await remainingDatabases(made)).toEqual([]);
});

async function newShop(): Promise<BusyShop> {
  const shop = await busyShop({ orders: ORDERS, prefix: 'rst' });
  made.push(shop.database);
  cleanups.push(() => shop.dispose());
  return shop;
}

/** Restarts the API before `restartAt` (after letting the writers find it open again), and fails `failAt` once. */
function restartMidRun(shop: BusyShop, restartAt: string, failAt?: string): StepInvoker {
  let restarted = false;
  let failed = false;
  return async (step, input, state, ctx) => {
    if (state === restartAt && !restarted) {
      restarted = true;
      await shop.restartApi();
      await sleep(1_500); // longer than Retry-After: the writers write again
    }
    if (state === failAt && !failed) {
      failed = true;
      throw new InjectedFault(state, 'throws');
    }
    return runStep(step, input, ctx);
  };
}

async function underLoad(shop: BusyShop, invoke: StepInvoker): Promise<{ report: WorkflowReport; writes: WriterReport }> {
  const log: string[] = [];
  const writer = shop.startWriter(log);
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: shop.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    await sleep(500);
    const report = await runWorkflow(
      ports,
      { kind: 'upgrade', database: shop.database, quiesce: [`http:${shop.api.maintenanceUrl}`], rehearsal: false },
      { invoke },
    );
    await sleep(1_000);
    const writes = await writer.stop();
    return { report, writes };
  } finally {
    await writer.stop();
    await ports.close();
  }
}

describe('an API restarted mid-upgrade, under load', () => {
  it(
    'before production changes: the run rolls back, and every acknowledged write is in the database',
    async () => {
      const shop = await newShop();
      const { report, writes } = await underLoad(shop, restartMidRun(shop, 'ConfirmQuiesced'));
      expect(report.run.status, report.run.error?.message).toBe('rolled-back');
      expect(report.run.error?.code).toBe('QUIESCE_LOST');
      expect(report.run.error?.message).toContain('answers mode "normal"');
      expect(writes.acknowledgedIds.length).toBeGreaterThan(50);
      expect(await shop.withClient((c) => acknowledgedPresent(c, writes)), 'no acknowledged write lost').toBe(writes.acknowledgedIds.length);
    },
    UPGRADE_TIMEOUT_MS,
  );

  it(
    'after production changed and then a failure: nothing is restored, the run needs an operator, no acknowledged write is lost',
    async () => {
      const shop = await newShop();
      const { report, writes } = await underLoad(shop, restartMidRun(shop, 'VerifyProduction', 'VerifyProduction'));
      expect(report.run.status, report.run.error?.message).toBe('needs-operator');
      expect(report.run.errors?.[1]?.code).toBe('QUIESCE_LOST');
      expect(
        report.timeline.some((t) => t.state === 'StartRestoreSnapshot'),
        'no snapshot was brought back',
      ).toBe(false);
      expect(writes.acknowledgedIds.length).toBeGreaterThan(50);
      expect(await shop.withClient((c) => acknowledgedPresent(c, writes)), 'no acknowledged write lost').toBe(writes.acknowledgedIds.length);
      const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: shop.database, migrationsDir: EXAMPLE_MIGRATIONS });
      try {
        await ports.ctx.ledger.breakLock(shop.database);
      } finally {
        await ports.close();
      }
    },
    UPGRADE_TIMEOUT_MS,
  );
});
