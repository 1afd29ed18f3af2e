import { runWorkflow } from '../../adapters/local/local-workflows.ts';
import { requireVersion } from '../../core/version.ts';
import type { Command } from '../command.ts';
import { HISTORY_OPTIONS, DIR_OPTION } from '../common-options.ts';
import { table } from '../format.ts';
import { CREATE_OPTION, openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';
import { describeRun, exitCodeFor } from '../workflow-report.ts';

/** `safeshift rehearse`: every pending migration on a clone of production, timed. */
export const rehearseCommand: Command = {
  name: 'rehearse',
  summary: 'apply pending migrations to a clone of production, verify, and record durations and the predicted quiesced window',
  description:
    'Production is not changed (locally, taking the snapshot briefly holds off new connections to it). The clone is deleted on every path. ' +
    'The ledger keeps the per-migration durations, lock retries and the predicted quiesced window for `safeshift runs` and the console.',
  examples: ['safeshift rehearse --dir migrations', 'safeshift rehearse --target 5 --json'],
  options: {
    ...DIR_OPTION,
    ...WORKFLOW_OPTIONS,
    ...CREATE_OPTION,
    ...HISTORY_OPTIONS,
    target: { type: 'string', placeholder: 'V', description: 'rehearse up to this version' },
  },
  usesDatabase: true,
  async run(input) {
    const target = typeof input.values.target === 'string' ? requireVersion(input.values.target, '--target').text : null;
    const { ports, database } = await openTarget(input, { needsDir: true });
    try {
      const report = await runWorkflow(
        ports,
        { kind: 'rehearsal', database, targetVersion: target, rehearsal: true },
        { onState: (s) => input.log.info(`-> ${s}`), stopOnSignals: true },
      );
      const rehearsal = (await ports.ctx.ledger.listRehearsals(database)).find((r) => r.runId === report.run.runId);
      const lines = [describeRun(report)];
      if (rehearsal?.migrations.length) {
        lines.push(
          '',
          `predicted quiesced window: ${rehearsal.predictedWindowMs} ms`,
          table(
            ['migration', 'ms', 'lock retries'],
            rehearsal.migrations.map((m) => [m.script, m.executionMs, m.lockRetries]),
          ),
        );
      }
      return { exitCode: exitCodeFor(report.run.status), json: { ...report, rehearsal }, text: lines.join('\n') };
    } finally {
      await ports.close();
    }
  },
};
