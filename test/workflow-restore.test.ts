import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { restoreWorkflow } from '../src/steps/workflows.ts';
import type { RunStatus } from '../src/ports.ts';
import { eachCase, makeLanes, type ShopLane } from './support/case-pool.ts';
import { defined } from './support/defined.ts';
import { expectedOutcome, expectSafeOutcome, FAULT_MODES, runOn, taskStates, withPorts, type Fault } from './support/fault-matrix.ts';
import { dropCase, remainingDatabases, roleExists, TrackedCopies } from './support/run-resources.ts';
import { leftovers, productionState, roleState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * Restore: an operator brings a database back to a recorded snapshot. It takes a safety snapshot
 * first (so the restore can itself be undone), only accepts the database's own snapshots, and after
 * a fault at any Task leaves production exactly as it was or exactly as the snapshot holds it.
 */
const MATRIX_TIMEOUT_MS = 600_000;

/** Each lane's `before` is the shop as seeded (version 2): what a pre-upgrade snapshot holds; `after`, after the example upgrade (version 3). */
let lanes: ShopLane[] = [];
/** Lane 0's, for the tests that run one case at a time. */
let shop: ShopTemplate;
let original: Record<string, unknown>;
let upgraded: Record<string, unknown>;
let roleBefore: Record<string, unknown>;
/** The Task states a clean restore enters, in order. */
let restoreTasks: string[];
let injected = 0;
/** How the fault cases ended, by run status. */
const outcomes: Record<string, number> = {};
/** Every copy this file made, to check at the end that none of them, nor anything runs made for them, is left. */
const copies = new TrackedCopies();

/** A copy of the shop, dropped after the test with every snapshot and clone runs made for it. */
const copy = (prefix: string): Promise<CaseDatabase> => copies.copy(shop, prefix);

/** Upgrades a copy (no rehearsal: the matrix needs many) and returns its pre-upgrade snapshot's id. */
async function upgradeOf(db: CaseDatabase, of: ShopTemplate = shop): Promise<string> {
  const { report } = await runOn(of, db, { kind: 'upgrade', rehearsal: false });
  expect(report.run.status, report.run.error?.message).toBe('succeeded');
  expect(report.run.snapshotId).toBeTruthy();
  return defined(report.run.snapshotId, 'the pre-upgrade snapshot id');
}

/** A lane: a shop upgraded and restored once, which tells the states a restore goes from and to. */
async function makeLane(): Promise<ShopLane & { readonly tasks: string[] }> {
  const made = await shopTemplate(300);
  const ref = copies.remember(await made.copy('rsref'));
  try {
    const before = await ref.withClient(productionState);
    const role = await ref.withClient((c) => roleState(c, made.appRole, ref.database));
    const snapshotId = await upgradeOf(ref, made);
    const after = await ref.withClient(productionState);
    expect(after).not.toEqual(before);
    const { report } = await runOn(made, ref, { kind: 'restore', snapshotId });
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    expect(await ref.withClient(productionState)).toEqual(before);
    return { shop: made, before, after, roleBefore: role, tasks: taskStates(report, restoreWorkflow()) };
  } finally {
    await dropCase(ref);
  }
}

beforeAll(async () => {
  const made = await makeLanes(makeLane, (lane) => lane.shop.dispose());
  lanes = made;
  const first = defined(made[0], 'lane 0');
  ({ shop, before: original, after: upgraded, roleBefore } = first);
  restoreTasks = first.tasks;
});

afterEach(() => copies.cleanUp());

afterAll(async () => {
  const ends = Object.entries(outcomes)
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  process.stdout.write(`restore: ${injected} faults injected${ends ? ` (runs ended: ${ends})` : ''}\n`);
  for (const lane of lanes) await lane.shop.dispose();
  expect(await remainingDatabases([...copies.made, ...lanes.map((l) => l.shop.template)]), 'nothing left behind').toEqual([]);
  for (const lane of lanes) expect(await roleExists(lane.shop.appRole), 'the app role is dropped').toBe(false);
});

describe('restore', () => {
  it('brings production back to exactly the pre-upgrade snapshot, and its safety snapshot brings the upgrade back', async () => {
    const db = await copy('rst');
    const snapshotId = await upgradeOf(db);
    expect(await db.withClient(productionState)).toEqual(upgraded);
    const recorded = await withPorts(db, (p) => p.ctx.ledger.getSnapshot(snapshotId));
    expect(recorded).toMatchObject({ database: db.database, kind: 'pre-upgrade', status: 'available', schemaVersion: '2' });

    const { report } = await runOn(shop, db, { kind: 'restore', snapshotId });
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    expect(report.run).toMatchObject({ kind: 'restore', fromVersion: '3', toVersion: '2' });
    expect(await db.withClient(productionState), 'production exactly as before the upgrade').toEqual(original);
    expect(report.quiesced.map((q) => [q.apiId, q.status])).toEqual([[`db-role:${shop.appRole}`, 'resumed']]);
    expect(report.quiescedWindowMs).toBeGreaterThan(0);
    expect(await db.withClient((c) => roleState(c, shop.appRole, db.database)), 'role rights put back').toEqual(roleBefore);
    expect(await db.withClient((c) => leftovers(c, db.database))).toEqual([]);

    const safety = await withPorts(db, async (p) => {
      expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined();
      // The restored snapshot is still there to restore again; the safety snapshot holds what production was.
      expect(await p.ctx.fleet.snapshotStatus(snapshotId)).toBe('available');
      const safeties = (await p.ctx.ledger.listSnapshots(db.database)).filter((s) => s.kind === 'safety');
      expect(safeties).toHaveLength(1);
      expect(safeties[0]).toMatchObject({ runId: report.run.runId, status: 'available', schemaVersion: '3' });
      const only = defined(safeties[0], 'the safety snapshot');
      expect(await p.ctx.fleet.snapshotStatus(only.snapshotId)).toBe('available');
      return only;
    });

    const { report: undo } = await runOn(shop, db, { kind: 'restore', snapshotId: safety.snapshotId });
    expect(undo.run.status, undo.run.error?.message).toBe('succeeded');
    expect(undo.run).toMatchObject({ fromVersion: '2', toVersion: '3' });
    expect(await db.withClient(productionState), 'the safety snapshot brings the upgraded state back').toEqual(upgraded);
    expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(roleBefore);
    expect(await db.withClient((c) => leftovers(c, db.database))).toEqual([]);
    await withPorts(db, async (p) => {
      expect((await p.ctx.ledger.listSnapshots(db.database)).filter((s) => s.kind === 'safety')).toHaveLength(2);
      expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined();
    });
  }, 120_000);

  it('refuses a snapshot of another database (SNAPSHOT_FOREIGN) or an unknown one (SNAPSHOT_NOT_FOUND), changing nothing', async () => {
    const db = await copy('own');
    const other = await copy('oth');
    // With the rehearsal on, so the ledger also records a rehearsal snapshot, deleted at the run's end.
    const { report: up } = await runOn(shop, db, { kind: 'upgrade' });
    expect(up.run.status, up.run.error?.message).toBe('succeeded');
    const otherSnapshot = await upgradeOf(other);
    const deleted = await withPorts(db, async (p) => (await p.ctx.ledger.listSnapshots(db.database)).find((s) => s.kind === 'rehearsal'));
    expect(deleted?.status).toBe('deleted');
    const before = await db.withClient(productionState);
    const otherBefore = await other.withClient(productionState);
    const snapshotsBefore = await withPorts(db, (p) => p.ctx.ledger.listSnapshots(db.database));

    const cases = [
      { snapshotId: otherSnapshot, code: 'SNAPSHOT_FOREIGN', says: other.database },
      { snapshotId: `ss-pre-nosuch-${Date.now()}`, code: 'SNAPSHOT_NOT_FOUND', says: 'safeshift snapshots' },
      { snapshotId: defined(deleted, 'the rehearsal snapshot').snapshotId, code: 'SNAPSHOT_NOT_FOUND', says: 'no longer available' },
    ];
    for (const c of cases) {
      const { report } = await runOn(shop, db, { kind: 'restore', snapshotId: c.snapshotId });
      expect(report.run.status, `${c.code} ${c.snapshotId}`).toBe('refused');
      expect(report.run.error?.code).toBe(c.code);
      expect(report.run.error?.message).toContain(c.snapshotId);
      expect(report.run.error?.message).toContain(c.says);
      expect(report.quiesced, 'nothing quiesced').toEqual([]);
      expect(report.timeline.map((t) => t.state)).toEqual(['Preflight', 'FinishRefused', 'Refused']);
      expect(await db.withClient(productionState), 'production unchanged').toEqual(before);
      await withPorts(db, async (p) => {
        expect(await p.ctx.ledger.getLock(db.database), 'lock released').toBeUndefined();
        expect(await p.ctx.ledger.listSnapshots(db.database), 'no safety snapshot taken').toEqual(snapshotsBefore);
      });
    }
    // The other database and its snapshot are untouched too.
    expect(await other.withClient(productionState)).toEqual(otherBefore);
    await withPorts(other, async (p) => expect(await p.ctx.fleet.snapshotStatus(otherSnapshot)).toBe('available'));
    expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(roleBefore);
  }, 120_000);
});

describe('restore with a fault at every Task', () => {
  /** One case: a fresh copy, upgraded, then restored to its pre-upgrade snapshot with the faults given. */
  async function restoreCase(faults: readonly Fault[], label: string, expected: RunStatus, lane = 0) {
    const { shop, before: original, after: upgraded, roleBefore } = defined(lanes[lane], `lane ${lane}`);
    const db = copies.remember(await shop.copy('rflt'));
    try {
      const snapshotId = await upgradeOf(db, shop);
      expect(await db.withClient(productionState), `${label}: upgraded before the restore`).toEqual(upgraded);
      const { report, fired } = await runOn(shop, db, { kind: 'restore', snapshotId }, faults);
      expect(fired, `${label}: faults fired`).toEqual(faults);
      injected += fired.length;
      outcomes[report.run.status] = (outcomes[report.run.status] ?? 0) + 1;
      // Exactly as before the restore (the upgraded state), or exactly the snapshot's (the original state).
      await expectSafeOutcome({ shop, db, report, before: upgraded, after: original, roleBefore, label, expected });
      await withPorts(db, async (p) => {
        expect(await p.ctx.fleet.snapshotStatus(snapshotId), `${label}: the snapshot to restore is kept`).toBe('available');
        const safeties = (await p.ctx.ledger.listSnapshots(db.database)).filter((s) => s.kind === 'safety');
        if (report.run.status === 'succeeded')
          expect(
            safeties.map((s) => s.status),
            `${label}: safety snapshot recorded`,
          ).toEqual(['available']);
      });
      return report;
    } finally {
      await dropCase(db);
    }
  }

  it.each(FAULT_MODES)(
    'ends safe when a step %s, at every Task',
    async (mode) => {
      expect(restoreTasks.length).toBeGreaterThanOrEqual(10);
      expect(restoreTasks).toEqual(
        expect.arrayContaining(['Preflight', 'Quiesce', 'StartSafetySnapshot', 'SwapRestoredInForward', 'VerifyProduction', 'Resume', 'FinishSucceeded']),
      );
      await eachCase(
        restoreTasks,
        async (state, lane) => {
          await restoreCase([{ state, mode }], `restore ${state} ${mode}`, expectedOutcome(restoreWorkflow(), { state, mode }), lane);
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );

  it.each(FAULT_MODES)(
    'ends safe when a step %s during the rollback',
    async (mode) => {
      // A crash right after the swap sends the run down the rollback path (swap back); then a second fault there.
      const primary: Fault = { state: 'SwapRestoredInForward', mode: 'crashes-after-side-effect' };
      const probe = await restoreCase([primary], 'restore rollback probe', 'rolled-back');
      const rollbackTasks = taskStates(probe, restoreWorkflow()).filter((s) => !restoreTasks.includes(s));
      expect(rollbackTasks).toEqual(expect.arrayContaining(['RollbackPlan', 'SwapBack', 'ResumeAfterRollback', 'CleanupAfterRollback', 'FinishRolledBack']));
      await eachCase(
        rollbackTasks,
        async (state, lane) => {
          await restoreCase([primary, { state, mode }], `restore rollback ${state} ${mode}`, 'rolled-back', lane);
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );
});
