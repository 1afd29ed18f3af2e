import type { RunError, RunStanding, RunStatus } from '../ports.ts';
import type { StepContext } from './context.ts';
import { nowIso } from './context.ts';
import { targetId } from './fleet-steps.ts';
import { newRunRecord, schemaVersionOf } from './run-steps.ts';
import { caughtError } from './step-error.ts';
import type { WorkflowState } from './state.ts';

/** Orchestration time a quiesced window needs beyond snapshot and migrations, for predictions. */
const ORCHESTRATION_ALLOWANCE_MS = 300;

/**
 * Closes the run in the ledger with its outcome and releases the lock. A run that needs an operator
 * keeps its lock, so nothing else touches a database in an unknown state until someone looks.
 */
export async function finishStep(state: WorkflowState, args: { status: RunStatus }, ctx: StepContext) {
  const { run } = state;
  const caught = args.status === 'succeeded' ? undefined : caughtError(state.error);
  // What sent the run down the rollback path, then what failed while bringing production back.
  const rollbackError = state.rollbackError ? caughtError(state.rollbackError) : undefined;
  const errors = [caught, rollbackError].filter((e): e is RunError => e !== undefined);
  // The step's own message speaks for the step ("the migration was rolled back"); say what the run did after it.
  const error =
    caught && args.status === 'rolled-back'
      ? {
          ...caught,
          message:
            `${caught.message}\nThe run then brought production back to its state before the ` +
            `run${state.snapshot ? ` (the snapshot taken before any change is ${(await ctx.ledger.getRun(run.runId))?.snapshotId ?? 'recorded'})` : ''}` +
            ` and resumed every API.`,
        }
      : caught;
  // A run refused before its first step recorded it (the very first write failed) is recorded now.
  const current = (await ctx.ledger.getRun(run.runId)) ?? (await ctx.ledger.startRun(newRunRecord(run, ctx)));
  const fromVersion = state.preflight?.fromVersion ?? current.fromVersion ?? null;
  const standing = args.status === 'needs-operator' ? await standingOf(state, ctx) : undefined;
  // A run that needs an operator is where it is, not where it meant to go: production's version read now.
  const toVersion =
    args.status === 'succeeded'
      ? (state.promoted?.toVersion ?? state.preflight?.toVersion ?? fromVersion)
      : standing
        ? standing.productionVersion
        : fromVersion;
  await ctx.ledger.updateRun(run.runId, {
    status: args.status,
    endedAt: nowIso(ctx),
    toVersion,
    // What a rolled-back run applied was undone with production; a run that needs an operator says what it had applied.
    applied: args.status === 'succeeded' || standing ? (state.promoted?.applied.map((a) => a.script) ?? []) : [],
    ...(error ? { error } : {}),
    ...(errors.length > 1 ? { errors } : {}),
    ...(standing ? { standing } : {}),
  });
  // The log the write fence kept is the server's disk; a run that ended, however it ended, needs it no more.
  await ctx.writeFence?.release(run.runId).catch((e: unknown) => {
    ctx.log.warn(`write fence: the log kept for run ${run.runId} could not be let go (${e instanceof Error ? e.message : String(e)})`);
  });
  if (args.status !== 'needs-operator') await ctx.ledger.releaseLock(run.database, run.runId);
  return { status: args.status, ...(error ? { error } : {}) };
}

/**
 * What a run that needs an operator leaves, each thing as it really is now: production's schema
 * version read from its history (or why it could not be read), every API still quiesced, the lock,
 * and the command to run next.
 */
async function standingOf(state: WorkflowState, ctx: StepContext): Promise<RunStanding> {
  const { run } = state;
  let productionVersion: string | null = null;
  let productionNote: string | undefined;
  try {
    productionVersion = await schemaVersionOf(ctx, run.database);
  } catch (error) {
    productionNote = `could not be read: ${error instanceof Error ? error.message : String(error)}`;
  }
  const stillQuiesced = (await ctx.ledger.listQuiesced({ runId: run.runId })).filter((q) => q.status !== 'resumed').map((q) => q.apiId);
  return {
    productionVersion,
    ...(productionNote ? { productionNote } : {}),
    stillQuiesced,
    lock: 'kept',
    next:
      `look at production "${run.database}" and the run's snapshot; then \`safeshift quiesced --resume --database ${run.database}\` ` +
      `puts back what is still stopped, and \`safeshift unlock --break --database ${run.database}\` frees the database once it is safe`,
  };
}

/** Records what the rehearsal measured on the clone: per-migration durations and the predicted quiesced window. */
export async function recordRehearsalStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const rehearsed = state.rehearsed;
  const snapshot = await ctx.ledger.getSnapshot(targetId(state, 'rehearsal-snapshot'));
  const migrations = (rehearsed?.applied ?? []).map((a) => ({ script: a.script, executionMs: a.executionMs, lockRetries: a.lockRetries }));
  const predictedWindowMs = (snapshot?.durationMs ?? 0) + migrations.reduce((t, m) => t + m.executionMs, 0) + ORCHESTRATION_ALLOWANCE_MS;
  await ctx.ledger.putRehearsal({
    runId: run.runId,
    database: run.database,
    createdAt: nowIso(ctx),
    fromVersion: state.preflight?.fromVersion ?? null,
    toVersion: rehearsed?.toVersion ?? null,
    migrations,
    predictedWindowMs,
    status: 'succeeded',
  });
  return { predictedWindowMs };
}

/** Records a failed rehearsal with its error (rehearsal runs and an upgrade's refused rehearsal). */
export async function recordRehearsalFailureStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  await ctx.ledger.putRehearsal({
    runId: run.runId,
    database: run.database,
    createdAt: nowIso(ctx),
    fromVersion: state.preflight?.fromVersion ?? null,
    toVersion: null,
    migrations: [],
    predictedWindowMs: 0,
    status: 'failed',
    error: caughtError(state.error),
  });
  return {};
}
