import type { RunStatus } from '../ports.ts';
import type { StepContext } from './context.ts';
import { nowIso } from './context.ts';
import { targetId } from './fleet-steps.ts';
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
  const caught = args.status === 'succeeded' ? undefined : caughtError(state.error as { Error?: string; Cause?: string } | undefined);
  // The step's own message speaks for the step ("the migration was rolled back"); say what the run did after it.
  const error = caught && args.status === 'rolled-back'
    ? { ...caught, message: `${caught.message}\nThe run then brought production back to its state before the run${state.snapshot ? ` (the snapshot taken before any change is ${(await ctx.ledger.getRun(run.runId))?.snapshotId ?? 'recorded'})` : ''} and resumed every API.` }
    : caught;
  // A run refused before its first step recorded it (the very first write failed) is recorded now.
  const current = (await ctx.ledger.getRun(run.runId)) ?? (await ctx.ledger.startRun({
    runId: run.runId, database: run.database, kind: run.kind, status: 'running', startedAt: nowIso(ctx), targetVersion: run.targetVersion ?? null,
  }));
  const fromVersion = state.preflight?.fromVersion ?? current?.fromVersion ?? null;
  const toVersion = args.status === 'succeeded'
    ? (state.promoted?.toVersion ?? state.preflight?.toVersion ?? fromVersion)
    : args.status === 'needs-operator' ? current?.toVersion ?? null : fromVersion;
  await ctx.ledger.updateRun(run.runId, {
    status: args.status, endedAt: nowIso(ctx), toVersion,
    // What a rolled-back run applied was undone with production; only a success leaves migrations applied.
    applied: args.status === 'succeeded' ? state.promoted?.applied.map((a) => a.script) ?? [] : [],
    ...(error ? { error } : {}),
  });
  if (args.status !== 'needs-operator') await ctx.ledger.releaseLock(run.database, run.runId);
  return { status: args.status, ...(error ? { error } : {}) };
}

/** Records what the rehearsal measured on the clone: per-migration durations and the predicted quiesced window. */
export async function recordRehearsalStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const rehearsed = state.rehearsed;
  const snapshot = await ctx.ledger.getSnapshot(targetId(state, 'rehearsal-snapshot'));
  const migrations = (rehearsed?.applied ?? []).map((a) => ({ script: a.script, executionMs: a.executionMs, lockRetries: a.lockRetries }));
  const predictedWindowMs = (snapshot?.durationMs ?? 0) + migrations.reduce((t, m) => t + m.executionMs, 0) + ORCHESTRATION_ALLOWANCE_MS;
  await ctx.ledger.putRehearsal({
    runId: run.runId, database: run.database, createdAt: nowIso(ctx), fromVersion: state.preflight?.fromVersion ?? null,
    toVersion: rehearsed?.toVersion ?? null, migrations, predictedWindowMs, status: 'succeeded',
  });
  return { predictedWindowMs };
}

/** Records a failed rehearsal with its error (rehearsal runs and an upgrade's refused rehearsal). */
export async function recordRehearsalFailureStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  await ctx.ledger.putRehearsal({
    runId: run.runId, database: run.database, createdAt: nowIso(ctx), fromVersion: state.preflight?.fromVersion ?? null,
    toVersion: null, migrations: [], predictedWindowMs: 0, status: 'failed',
    error: caughtError(state.error as { Error?: string; Cause?: string } | undefined),
  });
  return {};
}
