import { acquireMigrationLock } from '../core/advisory-lock.ts';
import { SafeshiftError } from '../core/errors.ts';
import { HistoryTable } from '../core/history.ts';
import { migrate } from '../core/migrate.ts';
import { DEFAULT_VERIFY_TIMEOUT_MS, verifyDatabase } from '../core/verify.ts';
import { requireVersion } from '../core/version.ts';
import type { SqlSession } from '../ports.ts';
import { remainingMs, type StepContext } from './context.ts';
import { targetId, type Target } from './fleet-steps.ts';
import { lostQuiesces } from './quiesce-steps.ts';
import type { WorkflowState } from './state.ts';
import { proveUnwritten } from './write-fence-steps.ts';

/**
 * Applies the next pending migration to production or to a clone: one per invocation, so each fits
 * in Lambda's 15 minutes; the state machine calls it again while `remaining` > 0. What it reports is
 * read back from the history rows of this run, so a repeated delivery reports the same.
 */
export async function migrateStep(state: WorkflowState, args: { target: Target }, ctx: StepContext) {
  const { run } = state;
  const databaseId = targetId(state, args.target);
  const session = await openBounded(ctx, databaseId, run.runId);
  try {
    // What the previous entry of this loop reported, so progress counts the run without another history read.
    const earlier = (args.target === 'rehearsal-clone' ? state.rehearsed : state.promoted)?.applied.length ?? 0;
    const result = await migrate({
      client: session,
      dir: ctx.migrationsDir,
      history: ctx.history,
      runId: run.runId,
      // On production the run's writes carry its mark, so the write fence can tell them from anyone else's.
      ...(args.target === 'production' && ctx.writeFence ? { ownWrites: ctx.writeFence.ownWrites(run.runId) } : {}),
      log: ctx.log,
      maxMigrations: 1,
      appliedEarlier: earlier,
      ...(run.targetVersion ? { target: requireVersion(run.targetVersion, 'target version') } : {}),
    });
    const rows = (await new HistoryTable(session, ctx.history).read()).filter((r) => r.runId === run.runId && r.success);
    const applied = rows.map((r) => ({
      script: r.script,
      executionMs: r.executionMs,
      lockRetries: result.applied.find((a) => a.script === r.script)?.lockRetries ?? 0,
    }));
    const toVersion = [...rows].reverse().find((r) => r.version !== null)?.version ?? result.toVersion;
    return { changed: true, applied, toVersion, remaining: result.remaining };
  } finally {
    await session.close();
  }
}

/** Runs the verify checks against production or a clone. */
export async function verifyStep(state: WorkflowState, args: { target: Target }, ctx: StepContext) {
  const databaseId = targetId(state, args.target);
  const session = await openBounded(ctx, databaseId, state.run.runId);
  const perCheck = state.run.verifyTimeoutSeconds === undefined ? DEFAULT_VERIFY_TIMEOUT_MS : state.run.verifyTimeoutSeconds * 1000;
  try {
    const results = await verifyDatabase(
      session,
      ctx.verifyDir,
      args.target === 'production' ? 'production' : `the ${args.target} database`,
      Math.min(perCheck, remainingMs(ctx) ?? perCheck),
    );
    return { checks: results.length };
  } finally {
    await session.close();
  }
}

/**
 * A session of the run on a database, every statement bounded by the time the invocation has left:
 * when the Task times out, its SQL is cancelled by the server instead of running on unseen.
 */
async function openBounded(ctx: StepContext, databaseId: string, runId: string): Promise<SqlSession> {
  const session = await ctx.connector.connect(databaseId, { runId });
  const budget = remainingMs(ctx);
  if (budget !== undefined) {
    try {
      await session.query(`set statement_timeout = ${Math.floor(budget)}`);
    } catch (error) {
      await session.close();
      throw error;
    }
  }
  return session;
}

/** How long RollbackPlan waits for the engine's lock once the run's sessions were ended. */
const ROLLBACK_LOCK_WAIT_MS = 30_000;

/**
 * Decides how to bring production back to where the run found it:
 * `swap-back` when a swap already put another database in its place (the original is `retired`),
 * `restore` when this run's migrations reached production (its history has rows of this run),
 * `none` when production was never touched. Asked again after a partial rollback, it answers for
 * what is left, so the rollback path can be retried safely.
 *
 * It decides on facts only: first every session of the run still on the server is ended (a Task that
 * failed may have left its migration running, and a transactional migration commits with its history
 * row in one round trip, after the Task is gone), then the engine's advisory lock is taken, which no
 * migration of any runner can hold while the history is read.
 */
export async function rollbackPlanStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const ended = await ctx.connector.endRunSessions(run.database, run.runId);
  if (ended > 0) ctx.log.warn(`ended ${ended} session(s) of run ${run.runId} that were still working when the run failed`);
  const action = await rollbackAction(state, ctx);
  if (action !== 'none') {
    // Bringing a database back discards what was written since; only while nothing could write.
    const lost = await lostQuiesces(state, ctx);
    if (lost.length > 0) {
      throw new SafeshiftError(
        'QUIESCE_LOST',
        `the run failed and would ${action === 'restore' ? 'restore the pre-upgrade snapshot' : 'swap the old production back'}, ` +
          `but ${lost.join('; ')} ${lost.length === 1 ? 'is' : 'are'} no longer quiesced, so production may hold writes made since the snapshot. ` +
          `Nothing was restored or deleted: production "${run.database}" is as the failed run left it, ` +
          `the pre-upgrade snapshot ${targetId(state, 'pre-upgrade')} is kept. ` +
          'Compare the two, keep the writes you need, then resume the APIs and unlock the database',
        { outcome: 'needs-operator', details: { lost, action } },
      );
    }
    await proveUnwritten(state, ctx, {
      what: action === 'restore' ? 'restoring the pre-upgrade snapshot' : 'swapping the old production back',
      rollingBack: true,
    });
  }
  return { action, endedSessions: ended };
}

/** What bringing production back takes, read from the fleet and production's history. */
async function rollbackAction(state: WorkflowState, ctx: StepContext): Promise<'none' | 'restore' | 'swap-back'> {
  const { run } = state;
  if ((await ctx.fleet.databaseStatus(targetId(state, 'retired'))) === 'available') return 'swap-back';
  if (run.kind !== 'upgrade' || !state.snapshot) return 'none';
  const session = await ctx.connector.connect(run.database);
  try {
    const release = await acquireMigrationLock(session, ctx.history, { waitMs: ROLLBACK_LOCK_WAIT_MS });
    try {
      const rows = await new HistoryTable(session, ctx.history).read();
      return rows.some((r) => r.runId === run.runId) ? 'restore' : 'none';
    } finally {
      await release().catch(() => undefined);
    }
  } finally {
    await session.close();
  }
}
