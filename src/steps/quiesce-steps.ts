import { SafeshiftError } from '../core/errors.ts';
import type { StepContext } from './context.ts';
import { nowIso } from './context.ts';
import type { WorkflowState } from './state.ts';

/**
 * Stops every API that writes to the database. For each: its current state is captured and written
 * to the ledger first (write-ahead), then it is quiesced. A repeated delivery reuses the recorded
 * prior state, never re-captures it (that would record the quiesced state as the one to go back to).
 */
export async function quiesceStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const recorded = await ctx.ledger.listQuiesced({ runId: run.runId });
  const apis: string[] = [];
  for (const spec of run.quiesce ?? []) {
    const quiescer = ctx.quiescers.create(spec, run.database);
    const known = recorded.find((r) => r.apiId === quiescer.id);
    const prior = known ? known.prior : await quiescer.capture();
    if (!known) await ctx.ledger.putQuiesce({ runId: run.runId, database: run.database, apiId: quiescer.id, prior, status: 'quiescing' });
    ctx.log.info(`quiescing ${quiescer.id}`);
    await quiescer.quiesce();
    await ctx.ledger.putQuiesce({
      runId: run.runId,
      database: run.database,
      apiId: quiescer.id,
      prior,
      status: 'quiesced',
      quiescedAt: known?.quiescedAt ?? nowIso(ctx),
    });
    apis.push(quiescer.id);
  }
  const at = nowIso(ctx);
  await ctx.ledger.updateRun(run.runId, { quiescedAt: (await ctx.ledger.getRun(run.runId))?.quiescedAt ?? at });
  return { at, apis };
}

/** Puts every API this run quiesced back exactly as the ledger recorded it, and records when. */
export async function resumeStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const records = await ctx.ledger.listQuiesced({ runId: run.runId });
  const apis: string[] = [];
  for (const record of records) {
    if (record.status === 'resumed') continue;
    const quiescer = ctx.quiescers.create(record.apiId, run.database);
    ctx.log.info(`resuming ${record.apiId}`);
    await quiescer.resume(record.prior);
    await ctx.ledger.putQuiesce({ ...record, status: 'resumed', resumedAt: nowIso(ctx) });
    apis.push(record.apiId);
  }
  const at = nowIso(ctx);
  if (records.length > 0) await ctx.ledger.updateRun(run.runId, { resumedAt: at });
  return { at, apis };
}

/**
 * The APIs this run quiesced that no longer hold (an API restarted mid-run may come back writing),
 * each with what was seen. A snapshot brought back now would discard what they wrote since.
 */
export async function lostQuiesces(state: WorkflowState, ctx: StepContext): Promise<string[]> {
  const { run } = state;
  const lost: string[] = [];
  for (const record of await ctx.ledger.listQuiesced({ runId: run.runId })) {
    if (record.status === 'resumed') continue;
    const hold = await ctx.quiescers.create(record.apiId, run.database).stillQuiesced();
    if (!hold.holds) lost.push(`${record.apiId} (${hold.evidence})`);
  }
  return lost;
}

/**
 * Before production is changed (and again before a swap puts another database in its place): every
 * API this run quiesced must still hold, or whatever it writes from now on would be lost if the run
 * has to bring the pre-upgrade snapshot back. Production is unchanged when this fails, so the run is
 * rolled back (the APIs resumed) with the evidence.
 */
export async function confirmQuiescedStep(state: WorkflowState, ctx: StepContext) {
  const lost = await lostQuiesces(state, ctx);
  if (lost.length > 0) {
    throw new SafeshiftError(
      'QUIESCE_LOST',
      `no longer quiesced: ${lost.join('; ')}. Something brought ${lost.length === 1 ? 'it' : 'them'} ` +
        `back while the run had ${lost.length === 1 ? 'it' : 'them'} stopped ` +
        '(a restart, a deploy, a person); production was not changed by this run, which stops here. Find what restarted it, then run the upgrade again',
      { outcome: 'rolled-back', details: { lost } },
    );
  }
  return { at: nowIso(ctx) };
}
