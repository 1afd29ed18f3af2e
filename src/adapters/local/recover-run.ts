import { SafeshiftError } from '../../core/errors.ts';
import type { Ledger, RecoveryNote, RunRecord } from '../../ports.ts';
import { resourceName, type ResourceRole } from '../../steps/names.ts';
import { LOCAL_LOCK_TTL_MS, runLiveness, thisProcess } from '../../steps/run-liveness.ts';
import { continueWorkflow, type LocalPorts, type WorkflowOptions, type WorkflowReport } from './local-workflows.ts';

export interface RecoverOptions {
  /** The database whose interrupted run to recover (its newest), when no run id is given. */
  readonly database: string;
  readonly runId?: string;
  /** Roll back (or, before anything changed, refuse) instead of continuing from the checkpoint. */
  readonly rollBack?: string;
  /** Take over a run that has no local owner recorded (its liveness cannot be told). */
  readonly force?: boolean;
}

/** What `safeshift recover` did. */
export interface RecoverReport {
  /** The run looked at; none when the database has no run at all. */
  readonly run?: RunRecord;
  /** Set when it took a run over: what it found and did. */
  readonly note?: RecoveryNote;
  /** The continued execution, when there was one. */
  readonly report?: WorkflowReport;
  /** Repairs done on a database that had no run left to recover. */
  readonly repairs: readonly string[];
  /** In words, for the person who ran it. */
  readonly summary: string;
}

/**
 * What only a run's own CREATE DATABASE can leave behind untagged: the copies it makes. Never the
 * names a swap gives production's old database (`retired`, `failed`), which carry no tags of ours.
 */
const COPIED_ROLES: readonly ResourceRole[] = ['rehearsal-snapshot', 'rehearsal-clone', 'pre-upgrade', 'safety', 'new', 'restored'];

/**
 * Finishes a local run whose process died: refuses while its owner is alive, takes its lock over on
 * purpose, ends whatever of it is still working on the server, repairs what a copy cut short left,
 * and then continues its state machine from the last checkpoint (or rolls it back, when a stop was
 * asked for). The workflow's own endings resume every API from the state the run recorded before it
 * stopped them, release the lock and clean up. Run again, it finds the run ended and changes nothing.
 *
 * @example
 * ```ts
 * const result = await recoverRun(ports, { database: 'shop' });
 * console.log(result.summary);
 * ```
 */
export async function recoverRun(ports: LocalPorts, options: RecoverOptions, workflow: WorkflowOptions = {}): Promise<RecoverReport> {
  const { ledger, fleet, connector } = ports.ctx;
  const run = await findRecoverableRun(ports.ctx.ledger, options.database, options.runId);
  if (!run) {
    const repairs = (await fleet.repair?.(options.database, [])) ?? [];
    return {
      repairs,
      summary: `no run of "${options.database}" is recorded as running; nothing to recover${repairs.length ? `. Repaired: ${repairs.join('; ')}` : ''}`,
    };
  }
  const liveness = runLiveness(run);
  if (liveness === 'ended') {
    const repairs = (await fleet.repair?.(run.database, [])) ?? [];
    return {
      run,
      repairs,
      summary:
        `run ${run.runId} of "${run.database}" already ended (${run.status}); ` +
        `nothing to recover${repairs.length ? `. Repaired: ${repairs.join('; ')}` : ''}`,
    };
  }
  if (liveness === 'alive') {
    throw new SafeshiftError(
      'RUN_ALIVE',
      `run ${run.runId} of "${run.database}" is still being run by process ${run.owner?.pid ?? '?'} on ${run.owner?.host ?? '?'} ` +
        `(last heartbeat ${run.heartbeatAt ?? '?'}); stop that process first (Ctrl-C stops it safely), or wait for it to finish`,
      { details: { runId: run.runId, owner: run.owner } },
    );
  }
  if (liveness === 'unknown' && !options.force) {
    throw new SafeshiftError(
      'RUN_ALIVE',
      `run ${run.runId} of "${run.database}" is recorded as running but has no local process recorded (a Step Functions execution, or an older safeshift), ` +
        'so whether it is still going cannot be told; if you are sure it is not, say --force',
      { details: { runId: run.runId } },
    );
  }
  const lock = await ledger.getLock(run.database);
  if (lock && lock.owner !== run.runId) {
    throw new SafeshiftError(
      'LOCKED',
      `database "${run.database}" is locked by another run (${lock.owner}) since ${lock.acquiredAt}; ` +
        `run ${run.runId} cannot be recovered while it holds the lock`,
      { details: { ...lock } },
    );
  }
  // On purpose and on record: this process now owns the run and its lock.
  const by = thisProcess();
  await ledger.acquireLock(run.database, run.runId, LOCAL_LOCK_TTL_MS);
  await ledger.updateRun(run.runId, { owner: by, heartbeatAt: by.startedAt });
  const endedSessions = await connector.endRunSessions(run.database, run.runId);
  const leftovers = COPIED_ROLES.map((role) => resourceName(role, run.database, run.runId));
  const repairs = (await fleet.repair?.(run.database, leftovers)) ?? [];
  const checkpoint = run.checkpoint;
  const stop = options.rollBack ?? run.stopRequested?.reason;
  const action: RecoveryNote['action'] = !checkpoint ? 'close' : stop !== undefined ? 'roll-back' : 'continue';
  const why = !checkpoint
    ? 'it died in preflight, before it changed anything: closed as refused'
    : stop !== undefined
      ? `${stop}: rolled back from ${checkpoint.state} (refused instead, if it had changed nothing yet)`
      : `its process died at ${checkpoint.state}; continued from there, running that step again`;
  const note: RecoveryNote = {
    at: new Date().toISOString(),
    by,
    ...(run.owner ? { previousOwner: run.owner } : {}),
    ...(checkpoint ? { fromState: checkpoint.state } : {}),
    action,
    endedSessions,
    repairs,
    why,
  };
  // Written before continuing, so a recovery that dies itself is on record too.
  await ledger.updateRun(run.runId, { recoveries: [...(run.recoveries ?? []), note] });
  const report = checkpoint
    ? await continueWorkflow(
        ports,
        run,
        {
          startAt: checkpoint.state,
          input: checkpoint.input,
          attempts: checkpoint.attempts,
          timeline: run.timeline ?? [],
          ...(stop !== undefined ? { stopReason: stop } : {}),
        },
        workflow,
      )
    : await continueWorkflow(
        ports,
        run,
        {
          startAt: 'FinishRefused',
          timeline: run.timeline ?? [],
          input: {
            run: { runId: run.runId, kind: run.kind, database: run.database },
            error: {
              Error: 'RUN_INTERRUPTED',
              Cause: JSON.stringify({
                code: 'RUN_INTERRUPTED',
                message: `the run's process died in preflight, before anything was changed; safeshift recover closed it`,
              }),
            },
          },
        },
        workflow,
      );
  const summary = [
    `recovered ${run.kind} run ${run.runId} of "${run.database}": ${why}; it ended ${report.run.status}`,
    ...(endedSessions ? [`ended ${endedSessions} session(s) the dead process had left on the server`] : []),
    ...repairs,
  ].join('\n');
  return { run: report.run, note, report, repairs, summary };
}

/**
 * The run `recover` works on: the one asked for, else the database's newest interrupted run, else
 * its newest run still recorded as running, else its newest run (which has ended: nothing to do).
 */
export async function findRecoverableRun(ledger: Ledger, database: string, runId?: string): Promise<RunRecord | undefined> {
  if (runId !== undefined) {
    const run = await ledger.getRun(runId);
    if (!run) throw new SafeshiftError('RUN_NOT_FOUND', `no run ${runId} is recorded; \`safeshift runs\` lists them`);
    return run;
  }
  const runs = await ledger.listRuns(database, 50);
  const running = runs.filter((r) => r.status === 'running');
  return running.find((r) => runLiveness(r) === 'interrupted') ?? running[0] ?? runs[0];
}
