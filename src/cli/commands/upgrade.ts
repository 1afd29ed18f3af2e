import { runWorkflow } from '../../adapters/local/local-workflows.ts';
import { OptionError } from '../../core/errors.ts';
import { requireVersion } from '../../core/version.ts';
import type { Command } from '../command.ts';
import { HISTORY_OPTIONS, DIR_OPTION, QUIESCE_SAFETY_OPTIONS, listOption, quiesceSafety } from '../common-options.ts';
import { CREATE_OPTION, openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';
import { describeRun, exitCodeFor } from '../workflow-report.ts';
import { AWS_OPTIONS, isAwsMode, runOnAws } from '../aws-mode.ts';

/** `safeshift upgrade`: the whole safe upgrade, run locally from the same state machine AWS runs. */
export const upgradeCommand: Command = {
  name: 'upgrade',
  summary: 'rehearse on a clone, quiesce the APIs, snapshot, migrate, verify, resume; restore the snapshot on failure',
  description:
    'Runs state-machines/upgrade.asl.json in-process: preflight (refuses with exit 2 before any change), a rehearsal on a clone of production, ' +
    'quiesce of every API given with --quiesce (its state recorded in the ledger first), ' +
    'a pre-upgrade snapshot, promote (in-place, or swap in a migrated clone), ' +
    'verify (verify/*.sql beside the migrations folder), resume, clean up. ' +
    'Any failure after quiesce brings production back to the pre-upgrade snapshot and resumes the APIs (exit 1). ' +
    'Exit 3 means it could not put things back by itself and says what state things are in.',
  examples: [
    'safeshift upgrade --dir migrations --quiesce db-role:app --quiesce http:http://127.0.0.1:8080/maintenance',
    'safeshift upgrade --target 4 --strategy swap --database-url postgres://admin@db/shop --json',
    'safeshift upgrade --stack ShopDatabase --target 5 --wait --run-name release-42   (on AWS)',
  ],
  options: {
    ...DIR_OPTION,
    ...WORKFLOW_OPTIONS,
    ...CREATE_OPTION,
    ...QUIESCE_SAFETY_OPTIONS,
    ...AWS_OPTIONS,
    ...HISTORY_OPTIONS,
    target: { type: 'string', placeholder: 'V', description: 'upgrade to this version (default: all pending)' },
    strategy: { type: 'string', placeholder: 'in-place|swap', default: 'in-place', description: 'apply to production, or migrate a clone and swap it in' },
    quiesce: { type: 'string', placeholder: 'SPEC', description: 'an API to stop during the upgrade: db-role:ROLE or http:URL (repeatable)', multiple: true },
    'no-rehearsal': { type: 'boolean', description: 'skip the rehearsal on a clone' },
  },
  usesDatabase: true,
  async run(input) {
    if (isAwsMode(input)) return runOnAws(input, 'upgrade');
    const strategy = String(input.values.strategy ?? 'in-place');
    if (strategy !== 'in-place' && strategy !== 'swap') throw new OptionError(`--strategy is in-place or swap, not "${strategy}"`);
    const target = typeof input.values.target === 'string' ? requireVersion(input.values.target, '--target').text : null;
    const quiesce = listOption(input, 'quiesce');
    const { ports, database } = await openTarget(input, { needsDir: true });
    try {
      for (const spec of quiesce) ports.ctx.quiescers.create(spec, database);
      const report = await runWorkflow(
        ports,
        {
          kind: 'upgrade',
          database,
          targetVersion: target,
          strategy,
          quiesce,
          rehearsal: !input.values['no-rehearsal'],
          ...quiesceSafety(input),
        },
        { onState: (s) => input.log.info(`-> ${s}`), stopOnSignals: true },
      );
      return { exitCode: exitCodeFor(report.run.status), json: report, text: describeRun(report) };
    } finally {
      await ports.close();
    }
  },
};
