import { expect } from 'vitest';
import { connectPg } from '../../src/adapters/local/pg-connection.ts';
import type { WorkflowReport } from '../../src/adapters/local/local-workflows.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';
import { resourceName, type ResourceRole } from '../../src/steps/names.ts';
import { schemaVersionOf } from '../../src/steps/run-steps.ts';
import type { ShopLane } from './case-pool.ts';
import { testServerUrl } from './database.ts';
import { defined } from './defined.ts';
import { withPorts } from './fault-matrix.ts';
import { productionState, roleState, type CaseDatabase } from './shop.ts';

/*
 * What test/faults-port-calls.test.ts checks after each faulted run, beyond the matrices' own
 * invariants (fault-matrix.ts expectSafeOutcome): that the record is true, what a run that needs an
 * operator leaves, and how the test puts a lane back for its next case.
 */

const ROLES: readonly ResourceRole[] = ['rehearsal-snapshot', 'rehearsal-clone', 'pre-upgrade', 'new', 'retired', 'restored', 'failed'];

/** Drops what a run made (snapshots are templates, made ordinary first): a hundred runs' copies would otherwise stay on the server. */
export async function dropRunDatabases(db: CaseDatabase, runId: string): Promise<void> {
  const admin = await connectPg(testServerUrl());
  try {
    for (const name of ROLES.map((r) => resourceName(r, db.database, runId))) {
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (!rowCount) continue;
      await admin.query(`alter database ${escapeIdentifier(name)} with is_template false`);
      await admin.query(`drop database ${escapeIdentifier(name)} with (force)`);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/**
 * What the record says must be true: its final version is production's as read from its history
 * now (once the run had read it: a run refused before that has no version to tell), a failed run
 * names the injected fault among its errors, and each snapshot record of the run that says
 * `available` or `deleted` is so on the server.
 */
export async function expectHonestRecord(db: CaseDatabase, report: WorkflowReport, what: string): Promise<void> {
  await withPorts(db, async ({ ctx }) => {
    const run = defined(await ctx.ledger.getRun(report.run.runId), 'the run record');
    if (run.fromVersion !== undefined) {
      expect(run.toVersion ?? null, `${what}: the recorded version is production's`).toBe(await schemaVersionOf(ctx, db.database));
    }
    if (run.status !== 'succeeded') expect(JSON.stringify([run.error, run.errors]), `${what}: the record names the fault`).toMatch(/injected port fault/);
    for (const s of (await ctx.ledger.listSnapshots(db.database)).filter((r) => r.runId === run.runId)) {
      const status = await ctx.fleet.databaseStatus(s.snapshotId);
      if (s.status === 'deleted') expect(status, `${what}: ${s.snapshotId} recorded deleted`).toBe('missing');
      if (s.status === 'available') expect(status, `${what}: ${s.snapshotId} recorded available`).toBe('available');
    }
  });
}

/**
 * A run that needs an operator says where things stand, and that is where they stand: production as
 * before or fully upgraded (never half-way), its version as recorded, the lock kept by the run, the
 * cause and the rollback's failure both recorded, and every API the run still has stopped named.
 */
export async function expectNeedsOperator(lane: ShopLane, db: CaseDatabase, report: WorkflowReport, what: string): Promise<void> {
  expect(report.run.status, `${what}: status ${report.run.status} ${report.run.error?.message ?? ''}`).toBe('needs-operator');
  expect([lane.before, lane.after], `${what}: production as before or fully upgraded`).toContainEqual(await db.withClient(productionState));
  const standing = defined(report.run.standing, `${what}: the standing of a run that needs an operator`);
  expect(standing.lock, `${what}: lock kept`).toBe('kept');
  expect(report.run.errors?.length, `${what}: the cause and the rollback's failure are recorded`).toBe(2);
  const stopped = report.quiesced.filter((q) => q.status !== 'resumed').map((q) => q.apiId);
  expect(standing.stillQuiesced, `${what}: the APIs still stopped are named`).toEqual(stopped);
  const role = await db.withClient((c) => roleState(c, lane.shop.appRole, db.database));
  if (stopped.length === 0) expect(role, `${what}: role rights put back`).toEqual(lane.roleBefore);
  else expect(role, `${what}: the role named as stopped is`).toMatchObject({ rolcanlogin: false });
  await withPorts(db, async ({ ctx }) => {
    expect((await ctx.ledger.getLock(db.database))?.owner, `${what}: the run keeps the lock`).toBe(report.run.runId);
    expect(standing.productionVersion, `${what}: production's version as recorded`).toBe(await schemaVersionOf(ctx, db.database));
  });
}

/**
 * What an operator does after a run that needs one, so the lane's next case starts clean: every API
 * it left stopped put back as recorded, and the lock broken.
 */
export async function operatorPutsBack(db: CaseDatabase, report: WorkflowReport): Promise<void> {
  await withPorts(db, async ({ ctx }) => {
    for (const q of report.quiesced.filter((r) => r.status !== 'resumed')) {
      await ctx.quiescers.create(q.apiId, db.database).resume(q.prior);
      await ctx.ledger.putQuiesce({ ...q, status: 'resumed', resumedAt: new Date().toISOString() });
    }
    await ctx.ledger.breakLock(db.database);
  });
}
