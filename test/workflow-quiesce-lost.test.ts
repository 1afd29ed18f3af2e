import { describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { runStep } from '../src/steps/registry.ts';
import { runSafeshift } from './support/cli.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { FAULT_MODES, InjectedFault } from './support/fault-matrix.ts';
import { interfere } from './support/interfere.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, type CaseDatabase } from './support/shop.ts';
import { useShopCases } from './support/shop-cases.ts';

/**
 * A quiesce that does not hold: the app's role gets its LOGIN back mid-run (a deploy, a person, an
 * app restarted with its own credentials). Before production changes the run must stop and roll
 * back; after it changed, bringing the snapshot back would discard what the app wrote since, so the
 * run stops for an operator with the evidence and discards nothing.
 */
const cases = useShopCases(100, 'qlref');
const { copies } = cases;

/** What an app's deploy would do to a role safeshift locked out. */
async function giveLoginBack(role: string): Promise<void> {
  const admin = await connectPg(testServerUrl());
  try {
    await admin.query(`alter role ${escapeIdentifier(role)} login`);
  } finally {
    await admin.end();
  }
}

async function upgrade(db: CaseDatabase, invoke: StepInvoker): Promise<WorkflowReport> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    return await runWorkflow(ports, { kind: 'upgrade', database: db.database, quiesce: [`db-role:${cases.shop.appRole}`], rehearsal: false }, { invoke });
  } finally {
    await ports.close();
  }
}

describe('the needs-operator path, faulted', () => {
  it.each(FAULT_MODES)('a run that needs an operator whose FinishNeedsOperator %s still records it, with the chain and the lock kept', async (mode) => {
    const db = await copies.copy(cases.shop, 'qlf');
    let faulted = false;
    const base = interfere('VerifyProduction', () => giveLoginBack(cases.shop.appRole), 'VerifyProduction');
    const report = await upgrade(db, async (step, input, state, ctx) => {
      if (state !== 'FinishNeedsOperator' || faulted) return base(step, input, state, ctx);
      faulted = true;
      if (mode === 'throws') throw new InjectedFault(state, mode);
      await runStep(step, input, ctx);
      if (mode === 'crashes-after-side-effect') throw new InjectedFault(state, mode);
      return runStep(step, input, ctx);
    });
    expect(faulted).toBe(true);
    expect(report.run.status).toBe('needs-operator');
    expect(report.run.errors?.map((e) => e.code)).toEqual(['INTERNAL', 'QUIESCE_LOST']);
    const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
    try {
      expect((await ports.ctx.ledger.getLock(db.database))?.owner).toBe(report.run.runId);
      await ports.ctx.ledger.breakLock(db.database);
    } finally {
      await ports.close();
    }
  });
});

describe('a quiesce that stops holding', () => {
  it('before production changes: the run stops, is rolled back with production exactly as before, and says what it saw', async () => {
    const db = await copies.copy(cases.shop, 'ql1');
    const roleBefore = await db.withClient((c) => roleState(c, cases.shop.appRole, db.database));
    const report = await upgrade(
      db,
      interfere('ConfirmQuiesced', () => giveLoginBack(cases.shop.appRole)),
    );
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    expect(report.run.error?.code).toBe('QUIESCE_LOST');
    expect(report.run.error?.message).toContain(`db-role:${cases.shop.appRole} (role ${cases.shop.appRole} can log in)`);
    expect(
      report.timeline.some((t) => t.state === 'MigrateProduction'),
      'production was never migrated',
    ).toBe(false);
    expect(await db.withClient(productionState)).toEqual(cases.before);
    expect(report.quiesced.every((q) => q.status === 'resumed')).toBe(true);
    expect(await db.withClient((c) => roleState(c, cases.shop.appRole, db.database))).toEqual(roleBefore);
  });

  it('after production changed: nothing is restored or deleted, the run needs an operator, with the evidence', async () => {
    const db = await copies.copy(cases.shop, 'ql2');
    const roleBefore = await db.withClient((c) => roleState(c, cases.shop.appRole, db.database));
    // The role comes back while production is being verified, and verifying fails.
    const report = await upgrade(
      db,
      interfere('VerifyProduction', () => giveLoginBack(cases.shop.appRole), 'VerifyProduction'),
    );
    expect(report.run.status, report.run.error?.message).toBe('needs-operator');
    // The chain: what failed first, then why production was not brought back.
    expect(report.run.error?.message).toMatch(/injected fault: VerifyProduction/);
    const [, rollback] = report.run.errors ?? [];
    expect(rollback?.code).toBe('QUIESCE_LOST');
    expect(rollback?.message).toMatch(/Nothing was restored or deleted/);
    expect(rollback?.message).toContain(`role ${cases.shop.appRole} can log in`);
    // What is, not what was meant: production is at V3, which the run applied.
    expect(report.run.toVersion).toBe('3');
    expect(report.run.applied).toEqual(['V2.1__index_order_status.sql', 'V3__customer_order_totals.ts']);
    expect(report.run.standing).toMatchObject({ productionVersion: '3', stillQuiesced: [`db-role:${cases.shop.appRole}`], lock: 'kept' });
    expect(report.run.standing?.next).toContain('safeshift quiesced');
    expect(
      report.timeline.some((t) => t.state === 'StartRestoreSnapshot'),
      'no restore was started',
    ).toBe(false);
    // Production keeps what the run (and the app, since) made of it; the pre-upgrade snapshot is kept.
    expect(await db.withClient(productionState)).not.toEqual(cases.before);
    const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
    try {
      expect(await ports.ctx.fleet.snapshotStatus(defined(report.run.snapshotId, 'the pre-upgrade snapshot id'))).toBe('available');
      expect((await ports.ctx.ledger.getLock(db.database))?.owner, 'the lock is kept for the operator').toBe(report.run.runId);
      await ports.ctx.ledger.breakLock(db.database);
    } finally {
      await ports.close();
    }
    // With the lock broken, a new run is still refused while the old run's APIs are recorded quiesced:
    // its Quiesce would take the stopped state for the one to go back to.
    const again = await upgrade(db, (step, input, _state, ctx) => runStep(step, input, ctx));
    expect(again.run.status).toBe('refused');
    expect(again.run.error?.code).toBe('STILL_QUIESCED');
    expect(again.run.error?.message).toContain('safeshift quiesced --resume');
    // The one command that puts them back, to the state the first run recorded.
    const resumed = await runSafeshift(['quiesced', '--resume', '--database-url', db.url]);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(await db.withClient((c) => roleState(c, cases.shop.appRole, db.database))).toEqual(roleBefore);
  });
});
