import { compatibilityOf } from '../core/compat.ts';
import { ValidationError, SafeshiftError } from '../core/errors.ts';
import { HistoryTable } from '../core/history.ts';
import { preflight } from '../core/preflight.ts';
import { requireVersion } from '../core/version.ts';
import type { RunRecord } from '../ports.ts';
import type { StepContext } from './context.ts';
import { nowIso } from './context.ts';
import { checkRunBeforeLock } from './run-checks.ts';
import type { RunInput, WorkflowState } from './state.ts';

const DEFAULT_LOCK_TTL_MS = 6 * 3_600_000;

/**
 * Opens the run: checks its input, target and quiesce specs (before the lock), records it in the
 * ledger, takes the database's run lock (a second run is refused with LOCKED and changes nothing),
 * and checks the migrations against production. Refuses with every problem listed before anything
 * changes. Returns the whole state with the input's defaults filled in (its Task's ResultPath is `$`).
 */
export async function preflightStep(state: WorkflowState, ctx: StepContext) {
  const run = await checkRunBeforeLock(state, ctx);
  await openRun(run, ctx);
  const session = await ctx.connector.connect(run.database, { runId: run.runId });
  try {
    const pf = await preflight({
      client: session,
      dir: ctx.migrationsDir,
      history: ctx.history,
      ...(run.targetVersion ? { target: requireVersion(run.targetVersion, 'target version') } : {}),
    });
    if (pf.problems.length > 0) throw new ValidationError(pf.problems, 'preflight');
    const fromVersion = pf.plan.currentVersion?.text ?? null;
    const toVersion = pf.plan.targetVersion?.text ?? null;
    await ctx.ledger.updateRun(run.runId, { fromVersion, toVersion, plannedVersion: toVersion });
    const planned = { fromVersion, toVersion, pending: pf.plan.pending.map((f) => f.script), nothingToDo: pf.plan.pending.length === 0 };
    return { ...state, run, preflight: planned };
  } finally {
    await session.close();
  }
}

/**
 * Opens a restore run: the same checks before the lock as an upgrade, the lock, and the snapshot
 * check: only a snapshot recorded for this database may be restored (SNAPSHOT_FOREIGN otherwise,
 * SNAPSHOT_NOT_FOUND when unknown). Returns the whole state, like {@link preflightStep}.
 */
export async function restorePreflightStep(state: WorkflowState, ctx: StepContext) {
  if (!state.run.snapshotId) throw new SafeshiftError('BAD_OPTION', 'a restore needs the id of the snapshot to restore (--snapshot ID)');
  const run = await checkRunBeforeLock(state, ctx);
  const snapshotId = run.snapshotId ?? state.run.snapshotId;
  await openRun(run, ctx);
  const record = await ctx.ledger.getSnapshot(snapshotId);
  const tags = await ctx.fleet.snapshotTags(snapshotId);
  if (!record && !tags) {
    throw new SafeshiftError(
      'SNAPSHOT_NOT_FOUND',
      `no snapshot ${snapshotId} is recorded; \`safeshift snapshots --database ${run.database}\` lists the ones that can be restored`,
    );
  }
  if (record?.kind === 'retired' || record?.kind === 'failed') {
    throw new SafeshiftError(
      'SNAPSHOT_NOT_FOUND',
      `${snapshotId} is not a snapshot but the database run ${record.runId} replaced, kept until ${record.keepUntil ?? 'an operator deletes it'}; ` +
        `restore from a pre-upgrade or safety snapshot (\`safeshift snapshots\`)`,
    );
  }
  const owner = record?.database ?? tags?.database;
  if (owner !== run.database || (tags && tags.database !== run.database)) {
    throw new SafeshiftError(
      'SNAPSHOT_FOREIGN',
      `snapshot ${snapshotId} was taken of database ${owner ?? '?'}, not of ${run.database}; a database can only be restored from its own snapshots`,
    );
  }
  if ((await ctx.fleet.snapshotStatus(snapshotId)) !== 'available') {
    throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `snapshot ${snapshotId} is recorded but no longer available to restore`);
  }
  const fromVersion = await schemaVersionOf(ctx, run.database);
  const toVersion = record?.schemaVersion ?? null;
  await ctx.ledger.updateRun(run.runId, { fromVersion, toVersion, plannedVersion: toVersion, snapshotId });
  return { ...state, run, preflight: { fromVersion, toVersion, pending: [], nothingToDo: false } };
}

/** A run's first record in the ledger: what it was asked to do, running from now. */
export function newRunRecord(run: RunInput, ctx: StepContext): RunRecord {
  return {
    runId: run.runId,
    database: run.database,
    kind: run.kind,
    status: 'running',
    startedAt: nowIso(ctx),
    targetVersion: run.targetVersion ?? null,
  };
}

async function openRun(run: RunInput, ctx: StepContext): Promise<void> {
  await ctx.ledger.startRun({
    ...newRunRecord(run, ctx),
    ...(run.strategy ? { strategy: run.strategy } : {}),
    ...(ctx.owner ? { owner: ctx.owner, heartbeatAt: nowIso(ctx) } : {}),
  });
  await ctx.ledger.acquireLock(run.database, run.runId, ctx.lockTtlMs ?? DEFAULT_LOCK_TTL_MS);
}

/** The highest applied version of a database's history, or null. */
export async function schemaVersionOf(ctx: StepContext, databaseId: string): Promise<string | null> {
  const session = await ctx.connector.connect(databaseId);
  try {
    return compatibilityOf(await new HistoryTable(session, ctx.history).read()).schemaVersion;
  } finally {
    await session.close();
  }
}
