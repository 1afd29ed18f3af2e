import { HistoryTable } from '../core/history.ts';
import { migrate } from '../core/migrate.ts';
import { verifyDatabase } from '../core/verify.ts';
import { requireVersion } from '../core/version.ts';
import type { StepContext } from './context.ts';
import { targetId, type Target } from './fleet-steps.ts';
import type { WorkflowState } from './state.ts';

/**
 * Applies the next pending migration to production or to a clone: one per invocation, so each fits
 * in Lambda's 15 minutes; the state machine calls it again while `remaining` > 0. What it reports is
 * read back from the history rows of this run, so a repeated delivery reports the same.
 */
export async function migrateStep(state: WorkflowState, args: { target: Target }, ctx: StepContext) {
  const { run } = state;
  const databaseId = targetId(state, args.target);
  const session = await ctx.connector.connect(databaseId);
  try {
    const result = await migrate({
      client: session, dir: ctx.migrationsDir, history: ctx.history, runId: run.runId, log: ctx.log, maxMigrations: 1,
      ...(run.targetVersion ? { target: requireVersion(run.targetVersion, 'target version') } : {}),
    });
    const rows = (await new HistoryTable(session, ctx.history).read()).filter((r) => r.runId === run.runId && r.success);
    const applied = rows.map((r) => ({ script: r.script, executionMs: r.executionMs, lockRetries: result.applied.find((a) => a.script === r.script)?.lockRetries ?? 0 }));
    const toVersion = [...rows].reverse().find((r) => r.version !== null)?.version ?? result.toVersion;
    return { changed: true, applied, toVersion, remaining: result.remaining };
  } finally {
    await session.close();
  }
}

/** Runs the verify checks against production or a clone. */
export async function verifyStep(state: WorkflowState, args: { target: Target }, ctx: StepContext) {
  const databaseId = targetId(state, args.target);
  const session = await ctx.connector.connect(databaseId);
  try {
    const results = await verifyDatabase(session, ctx.verifyDir, args.target === 'production' ? 'production' : `the ${args.target} database`);
    return { checks: results.length };
  } finally {
    await session.close();
  }
}

/**
 * Decides how to bring production back to where the run found it:
 * `swap-back` when a swap already put another database in its place (the original is `retired`),
 * `restore` when this run's migrations reached production (its history has rows of this run),
 * `none` when production was never touched. Asked again after a partial rollback, it answers for
 * what is left, so the rollback path can be retried safely.
 */
export async function rollbackPlanStep(state: WorkflowState, ctx: StepContext) {
  const retired = targetId(state, 'retired');
  if ((await ctx.fleet.databaseStatus(retired)) === 'available') return { action: 'swap-back' as const };
  if (state.run.kind === 'upgrade' && state.snapshot) {
    const session = await ctx.connector.connect(state.run.database);
    try {
      const rows = await new HistoryTable(session, ctx.history).read();
      if (rows.some((r) => r.runId === state.run.runId)) return { action: 'restore' as const };
    } finally {
      await session.close();
    }
  }
  return { action: 'none' as const };
}
