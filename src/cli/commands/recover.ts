import { existsSync } from 'node:fs';
import path from 'node:path';
import { findRecoverableRun, recoverRun } from '../../adapters/local/recover-run.ts';
import type { LocalPorts } from '../../adapters/local/local-workflows.ts';
import { OptionError } from '../../core/errors.ts';
import type { RunStatus } from '../../ports.ts';
import type { Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';
import { describeRun } from '../workflow-report.ts';

/** Exit codes of a recovery, by how the recovered run ended: 0 upgraded (or done), 1 back as before, 3 a person must look. */
function recoveredExit(status: RunStatus): number {
  if (status === 'succeeded') return ExitCode.ok;
  if (status === 'rolled-back' || status === 'refused') return ExitCode.rolledBack;
  return ExitCode.needsOperator;
}

/** `safeshift recover`: finish a local run whose process died (killed, Ctrl-C twice, a crash). */
export const recoverCommand: Command = {
  name: 'recover',
  summary: 'finish a run whose process died: continue it from its checkpoint (or roll it back), resume every API, release the lock, clean up',
  description:
    'A local upgrade, restore or rehearsal is checkpointed before every step. When its process dies, ' +
    'the run shows as interrupted and nothing else may start on its database. ' +
    "recover refuses while the run's process is alive (exit 2); otherwise it takes the run's lock over, " +
    'ends any of its SQL still running on the server, reopens a database a ' +
    'snapshot left closed and drops copies left half-made, then continues the state machine from the checkpoint, ' +
    'running the interrupted step again. A run that was asked to stop ' +
    '(Ctrl-C), or --roll-back, is rolled back instead. Every API is resumed to the ' +
    'state the run recorded before it stopped it. Running it again changes nothing. ' +
    'Exit 0: the run finished (or there was nothing to recover); 1: production is as it was before the run; ' +
    '2: refused; 3: it needs an operator (see the output).',
  examples: ['safeshift recover', 'safeshift recover --database shop --roll-back', 'safeshift recover --run 6f1c2a9b-… --json'],
  options: {
    ...WORKFLOW_OPTIONS,
    run: { type: 'string', placeholder: 'ID', description: 'the run to recover (default: the newest interrupted run of the database)' },
    'roll-back': { type: 'boolean', description: 'roll the run back instead of continuing it' },
    force: { type: 'boolean', description: 'take over a run that has no local process recorded (make sure nothing runs it)' },
    dir: { type: 'string', placeholder: 'DIR', description: 'the migrations folder to continue with (default: the one the run was started with)' },
  },
  usesDatabase: true,
  async run(input) {
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      // The same run recoverRun will pick, so the migrations folder is the one that run was started with.
      const known = await findRecoverableRun(ports.ctx.ledger, database, typeof input.values.run === 'string' ? input.values.run : undefined);
      const runId = known?.runId;
      const checkpoint = known?.checkpoint;
      const dir = typeof input.values.dir === 'string' ? path.resolve(input.values.dir) : checkpoint?.migrationsDir;
      let rollBack = input.values['roll-back'] ? 'safeshift recover --roll-back' : undefined;
      if (typeof input.values.dir === 'string' && !existsSync(dir ?? '')) throw new OptionError(`--dir ${input.values.dir} does not exist`);
      if (dir && !existsSync(dir) && !rollBack) {
        input.log.warn(`the run's migrations folder ${dir} is gone; rolling the run back instead of continuing it (give --dir to continue with another copy)`);
        rollBack = `its migrations folder ${dir} is gone`;
      }
      const withDir: LocalPorts = dir
        ? { ...ports, ctx: { ...ports.ctx, migrationsDir: dir, ...(checkpoint?.verifyDir ? { verifyDir: checkpoint.verifyDir } : {}) } }
        : ports;
      const result = await recoverRun(
        withDir,
        {
          database: known?.database ?? database,
          ...(runId ? { runId } : {}),
          ...(rollBack ? { rollBack } : {}),
          ...(input.values.force ? { force: true } : {}),
        },
        { onState: (s) => input.log.info(`-> ${s}`), stopOnSignals: true },
      );
      const text = result.report ? `${result.summary}\n\n${describeRun(result.report)}` : result.summary;
      return { exitCode: result.report ? recoveredExit(result.report.run.status) : ExitCode.ok, json: result, text };
    } finally {
      await ports.close();
    }
  },
};
