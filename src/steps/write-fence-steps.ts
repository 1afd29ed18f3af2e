import { SafeshiftError } from '../core/errors.ts';
import type { ForeignWrite } from '../ports.ts';
import type { StepContext } from './context.ts';
import { targetId } from './fleet-steps.ts';
import type { WorkflowState } from './state.ts';

/**
 * Marks a database for the write fence (ports.ts WriteFence) before the run makes the copy that may
 * later replace it: production before its snapshot, a replacement before it is swapped in. The mark
 * goes to the run's record first; a repeated delivery keeps the first mark, since a later one would
 * hide what was written in between. A fleet without a fence, or a server that refuses the mark,
 * leaves the run to its quiescers, and says so.
 */
export async function markForFence(state: WorkflowState, ctx: StepContext, databaseId: string): Promise<void> {
  const fence = ctx.writeFence;
  if (!fence) return;
  const { run } = state;
  const fences = (await ctx.ledger.getRun(run.runId))?.fences ?? {};
  if (Object.values(fences).some((m) => m.database === databaseId)) return;
  let mark;
  try {
    mark = await fence.mark(databaseId, run.runId);
  } catch (error) {
    // The server's own limits (no right to a replication slot, say) leave the fence out; a failing ledger below does not.
    ctx.log.warn(
      `write fence: "${databaseId}" could not be marked (${error instanceof Error ? error.message : String(error)}); only the quiescers vouch for it`,
    );
    return;
  }
  if (!mark.slot) ctx.log.warn(`write fence: no replication slot was free to keep the server's log for "${databaseId}"; a long run may lose its proof`);
  await ctx.ledger.updateRun(run.runId, { fences: { ...fences, [String(mark.databaseOid)]: mark } });
}

/** What replacing production would do, in the words of a refusal. */
export interface Replacement {
  /** What would bring the other database in: "swapping in the migrated clone", "restoring the pre-upgrade snapshot". */
  readonly what: string;
  /** True on the rollback path: production has changed, so stopping needs an operator; false before it changed (the run rolls back). */
  readonly rollingBack: boolean;
}

/**
 * Before production is replaced: proves that nothing but this run committed row changes to it since
 * its mark, or stops the run with the evidence. Before production changed, the run rolls back and
 * production keeps those writes; on the rollback path it needs an operator, and nothing is restored,
 * swapped or deleted. When the fence cannot read the whole log, the quiescers' word stands, unless
 * nothing was quiesced (`noQuiesce`): then nothing vouches, and the run stops the same way.
 */
export async function proveUnwritten(state: WorkflowState, ctx: StepContext, replacement: Replacement): Promise<void> {
  const fence = ctx.writeFence;
  if (!fence) return;
  const { run } = state;
  const marks = Object.values((await ctx.ledger.getRun(run.runId))?.fences ?? {});
  const report = await fence.check(run.database, marks, run.runId);
  if (report.foreign.length > 0) throw fenceError(state, replacement, describe(report.foreign), { foreign: report.foreign });
  if (!report.proven) {
    const why = report.note ?? 'the log could not be read';
    if (run.noQuiesce)
      throw fenceError(state, replacement, `nothing proves that no one else wrote to it since the snapshot (${why}), and no API was quiesced`, {});
    ctx.log.warn(`write fence: could not prove "${run.database}" unwritten (${why}); the quiescers vouch for it`);
  }
}

function fenceError(state: WorkflowState, replacement: Replacement, found: string, details: Record<string, unknown>): SafeshiftError {
  const { run } = state;
  const snapshot = `the snapshot ${targetId(state, run.kind === 'restore' ? 'safety' : 'pre-upgrade')}`;
  const head = `production "${run.database}" ${found}. ${capitalized(replacement.what)} would discard them, so `;
  return replacement.rollingBack
    ? new SafeshiftError(
        'WRITE_FENCE',
        `${head}nothing was restored, swapped or deleted: production is as the failed run left it, and ${snapshot} is kept. ` +
          'Compare the two, keep the writes you need, then resume the APIs and unlock the database. ' +
          'Whatever wrote them is not among the APIs the run quiesced: add it with --quiesce before the next run',
        { outcome: 'needs-operator', details },
      )
    : new SafeshiftError(
        'WRITE_FENCE',
        `${head}the run stops before replacing production, which keeps them, and rolls back. ` +
          'Whatever wrote them is not among the APIs the run quiesced: add it with --quiesce, then run again',
        { outcome: 'rolled-back', details },
      );
}

/** "was changed by 2 transactions that are not this run's since its mark: xid 812 at …, public.orders (3 row changes); …" */
function describe(foreign: readonly ForeignWrite[]): string {
  const shown = foreign.slice(0, 5).map((w) => {
    const what = w.changes > 0 ? `${w.changes} row change${w.changes === 1 ? '' : 's'}` : 'truncated, dropped or rewritten';
    return `xid ${w.xid} at ${w.committedAt}: ${w.relations.join(', ')} (${what})`;
  });
  const more = foreign.length > shown.length ? `; and ${foreign.length - shown.length} more` : '';
  const n = foreign.length;
  return `was changed since the run marked it by ${n} transaction${n === 1 ? '' : 's'} that ${n === 1 ? 'is' : 'are'} not this run's: ${shown.join('; ')}${more}`;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
