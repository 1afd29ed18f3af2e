import { SafeshiftError } from '../core/errors.ts';
import type { RunRecord } from '../ports.ts';
import type { StepContext } from './context.ts';
import { normalizeRunInput } from './run-input.ts';
import { interruptedNote, runLiveness } from './run-liveness.ts';
import type { RunInput, WorkflowState } from './state.ts';

/**
 * What every run checks before it takes the lock or records anything of its own, so a run that
 * cannot work is refused (exit 2) with nothing changed, instead of failing after Quiesce:
 * the input itself (with its defaults filled in), the target database, and every quiesce spec.
 * Returns the normalised input, which the first state writes back to `$.run`.
 */
export async function checkRunBeforeLock(state: WorkflowState, ctx: StepContext): Promise<RunInput> {
  const run = normalizeRunInput(state.run);
  await checkTarget(run, ctx);
  await checkNoInterruptedRun(run, ctx);
  await checkQuiesce(run, ctx);
  return run;
}

/**
 * A run whose process died is still recorded as running, maybe with APIs stopped and production
 * half-way: nothing new may start on its database until `safeshift recover` has finished it.
 */
async function checkNoInterruptedRun(run: RunInput, ctx: StepContext): Promise<void> {
  const lock = await ctx.ledger.getLock(run.database);
  const holder = lock && lock.owner !== run.runId ? await ctx.ledger.getRun(lock.owner) : undefined;
  const running = (await ctx.ledger.listRuns(run.database, 20)).filter((r) => r.status === 'running' && r.runId !== run.runId);
  const interrupted = [...(holder ? [holder] : []), ...running].find((r) => runLiveness(r) === 'interrupted');
  if (interrupted) {
    throw new SafeshiftError('RUN_INTERRUPTED', `${interruptedNote(interrupted)}. A new ${run.kind} would start from whatever it left; recover it first`, {
      details: { runId: interrupted.runId, state: interrupted.checkpoint?.state ?? null },
    });
  }
}

async function checkTarget(run: RunInput, ctx: StepContext): Promise<void> {
  if (ctx.ledger.databaseName !== undefined && ctx.ledger.databaseName === run.database) {
    throw new SafeshiftError(
      'TARGET_REFUSED',
      `"${run.database}" is the database safeshift keeps its ledger in; ` +
        `restoring or migrating it would rewind the record of every run. Give the application's database`,
    );
  }
  const problem = await ctx.connector.targetProblem?.(run.database);
  if (problem !== undefined)
    throw new SafeshiftError('TARGET_REFUSED', `${problem}; safeshift will not ${run.kind === 'rehearsal' ? 'rehearse on' : run.kind} it`);
}

/**
 * An upgrade or restore with nothing quiesced is refused unless said on purpose (`noQuiesce`): the
 * run brings a snapshot back when it fails (and a restore always does), which discards whatever was
 * written after the snapshot. Each spec is checked by its quiescer, changing nothing.
 */
async function checkQuiesce(run: RunInput, ctx: StepContext): Promise<void> {
  // A run that stopped half-way left APIs quiesced: a new Quiesce would record that stopped state as
  // the one to go back to, and resume nothing. Nothing new starts until they are put back.
  const left = (await ctx.ledger.listQuiesced({ database: run.database, active: true })).filter((q) => q.runId !== run.runId);
  if (left.length > 0 && run.kind !== 'rehearsal') {
    const owners = (await Promise.all([...new Set(left.map((q) => q.runId))].map((id) => ctx.ledger.getRun(id)))).filter(
      (r): r is RunRecord => r !== undefined,
    );
    const dead = owners.find((r) => runLiveness(r) === 'interrupted');
    const fix = dead
      ? `\`safeshift recover --run ${dead.runId}\` finishes that run or rolls it back, and resumes each to the state its run recorded`
      : `\`safeshift quiesced --resume --database ${run.database}\` resumes each to the state its run recorded`;
    throw new SafeshiftError(
      'STILL_QUIESCED',
      `${left.map((q) => `${q.apiId} (run ${q.runId})`).join(', ')} ${left.length === 1 ? 'is' : 'are'} ` +
        `still recorded as quiesced for "${run.database}" by a run that did not finish; ` +
        `a new ${run.kind} would take that stopped state for the one to go back to. Put ${left.length === 1 ? 'it' : 'them'} back first: ${fix}`,
      { details: { apis: left.map((q) => q.apiId), runs: [...new Set(left.map((q) => q.runId))] } },
    );
  }
  const specs = run.quiesce ?? [];
  if (run.kind !== 'rehearsal' && specs.length === 0 && !run.noQuiesce) {
    const loss =
      run.kind === 'restore'
        ? 'a restore replaces the database with the snapshot, so every write that reaches it while the restore runs is lost'
        : 'if the upgrade fails after its pre-upgrade snapshot, production is brought back to that snapshot, and every write committed after it is lost';
    throw new SafeshiftError(
      'NOTHING_QUIESCED',
      `no API is quiesced for this ${run.kind} of "${run.database}": ${loss}. Give --quiesce SPEC for every API that writes to it ` +
        '(db-role:ROLE, http:URL, lambda:NAME), or --no-quiesce to run without, accepting that loss',
      { details: { database: run.database } },
    );
  }
  for (const spec of specs) {
    const quiescer = ctx.quiescers.create(spec, run.database);
    await quiescer.check();
    if (run.kind === 'rehearsal') continue;
    // Stopped already, with no unfinished run's record of how it was before: Quiesce would record the
    // stopped state as the one to go back to, and the run would "resume" it to stopped.
    const hold = await quiescer.stillQuiesced();
    if (hold.holds) {
      throw new SafeshiftError(
        'ALREADY_QUIESCED',
        `${quiescer.id} is already stopped (${hold.evidence}), and no unfinished run recorded what it was before; ` +
          `the run would take stopped for its normal state and never start it again. ` +
          'Bring it back to how it normally runs, then start the run again',
        { details: { api: quiescer.id, evidence: hold.evidence } },
      );
    }
  }
}
