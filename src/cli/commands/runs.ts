import { SafeshiftError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { table } from '../format.ts';
import { runsTable } from '../run-versions.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';
import { AWS_OPTIONS, isAwsMode, runOnAws } from '../aws-mode.ts';

/** `safeshift runs`: the recorded upgrades, restores and rehearsals, newest first. */
export const runsCommand: Command = {
  name: 'runs',
  summary: 'list recorded upgrades, restores and rehearsals with their outcome',
  description: "Reads the ledger (locally the safeshift_control database beside the app's). --run ID shows one run with its timeline.",
  examples: ['safeshift runs', 'safeshift runs --run 6f1c2a9b-… --json'],
  options: {
    ...WORKFLOW_OPTIONS,
    ...AWS_OPTIONS,
    run: { type: 'string', placeholder: 'ID', description: 'show one run whole' },
    limit: { type: 'string', placeholder: 'N', default: '20', description: 'how many runs' },
  },
  usesDatabase: true,
  async run(input) {
    if (isAwsMode(input)) return runOnAws(input, 'runs');
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      const { ledger } = ports.ctx;
      if (typeof input.values.run === 'string') {
        const run = await ledger.getRun(input.values.run);
        if (!run) {
          throw new SafeshiftError('RUN_NOT_FOUND', `no run ${input.values.run} is recorded`);
        }
        const timeline = table(
          ['state', 'entered', 'exited', 'error'],
          (run.timeline ?? []).map((t) => [t.state, t.enteredAt, t.exitedAt, t.error]),
        );
        return { exitCode: 0, json: run, text: `${JSON.stringify({ ...run, timeline: undefined }, null, 2)}\n${timeline}` };
      }
      const runs = await ledger.listRuns(database, Number(input.values.limit ?? 20));
      const text = runs.length === 0 ? `no runs recorded for ${database}` : runsTable(runs);
      return { exitCode: 0, json: runs, text };
    } finally {
      await ports.close();
    }
  },
};
