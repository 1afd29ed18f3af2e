import { runWorkflow } from '../../adapters/local/local-workflows.ts';
import { OptionError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { HISTORY_OPTIONS, QUIESCE_SAFETY_OPTIONS, listOption, quiesceSafety } from '../common-options.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';
import { describeRun, exitCodeFor } from '../workflow-report.ts';
import { AWS_OPTIONS, isAwsMode, runOnAws } from '../aws-mode.ts';

/** `safeshift restore --snapshot ID`: bring a database back to a recorded snapshot, undoably. */
export const restoreCommand: Command = {
  name: 'restore',
  summary: 'bring a database back to one of its recorded snapshots (a safety snapshot is taken first)',
  description:
    'Only a snapshot recorded for this database can be restored (SNAPSHOT_FOREIGN otherwise, SNAPSHOT_NOT_FOUND when unknown). ' +
    'Quiesces the APIs, takes a safety snapshot of the current state so the restore can itself be undone, ' +
    'brings in a database made from the snapshot, verifies and resumes. ' +
    '`safeshift snapshots` lists what can be restored.',
  examples: [
    'safeshift restore --snapshot ss-pre-app-6f1c2a9b04d1 --quiesce db-role:app',
    'safeshift restore --snapshot ID --database-url postgres://admin@db/shop --json',
  ],
  options: {
    ...WORKFLOW_OPTIONS,
    ...QUIESCE_SAFETY_OPTIONS,
    ...AWS_OPTIONS,
    ...HISTORY_OPTIONS,
    dir: {
      type: 'string',
      placeholder: 'DIR',
      default: 'migrations',
      description: 'the migrations folder; its sibling verify/ holds the checks run after the restore',
    },
    snapshot: { type: 'string', placeholder: 'ID', description: 'the snapshot to restore (required)' },
    quiesce: { type: 'string', placeholder: 'SPEC', description: 'an API to stop during the restore: db-role:ROLE or http:URL (repeatable)', multiple: true },
  },
  usesDatabase: true,
  async run(input) {
    if (isAwsMode(input)) return runOnAws(input, 'restore');
    const snapshotId = input.values.snapshot;
    if (typeof snapshotId !== 'string' || !snapshotId) throw new OptionError('restore needs --snapshot ID; `safeshift snapshots` lists them');
    const quiesce = listOption(input, 'quiesce');
    const { ports, database } = await openTarget(input, { needsDir: true });
    try {
      for (const spec of quiesce) ports.ctx.quiescers.create(spec, database);
      const report = await runWorkflow(
        ports,
        { kind: 'restore', database, snapshotId, quiesce, rehearsal: false, ...quiesceSafety(input) },
        { onState: (s) => input.log.info(`-> ${s}`), stopOnSignals: true },
      );
      return { exitCode: exitCodeFor(report.run.status), json: report, text: describeRun(report) };
    } finally {
      await ports.close();
    }
  },
};
