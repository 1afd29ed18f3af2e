import { runDemo } from '../../../examples/demo/run-demo.ts';
import type { Command } from '../command.ts';
import { table } from '../format.ts';
import { describeRun } from '../workflow-report.ts';

/** `safeshift demo` (= `npm start`): two upgrades of a busy example shop on the embedded PostgreSQL. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'upgrade a busy example shop twice on the embedded PostgreSQL: one upgrade succeeds, one is rolled back',
  description:
    'Creates the database shop_demo with 100,000 orders on the embedded PostgreSQL, starts the example HTTP API and a writer posting orders to it, ' +
    'then runs two upgrades while it writes: to version 3 (succeeds) and to version 5 (V4 applies, ' +
    "V5's CHECK fails on real rows; production is restored from the pre-upgrade snapshot). " +
    "It prints each run's timeline, the quiesced window, the record of quiesced APIs, " +
    'and the writes acknowledged by the API against the rows present afterwards.',
  examples: ['npm start', 'safeshift demo --json'],
  options: {},
  usesDatabase: false,
  async run(input) {
    const report = await runDemo(input.log, (run, state) => input.log.info(`  ${run} -> ${state}`));
    const lines: string[] = [];
    for (const [i, u] of report.upgrades.entries()) {
      lines.push(`==== upgrade ${i + 1} ====`, describeRun(u), '');
    }
    lines.push(
      '==== writes ====',
      table(
        ['acknowledged by the API', 'present in the database', 'refused during quiesce (503)', 'other errors'],
        [[report.writes.acknowledged, report.writes.present, report.writes.refused, report.writes.errors]],
      ),
    );
    lines.push(
      '',
      report.asExpected
        ? `As expected: upgrade 1 succeeded, upgrade 2 was rolled back, and all ${report.writes.acknowledged} acknowledged writes are present.`
        : 'NOT as expected: see above.',
    );
    lines.push(
      '',
      'Look around: npx safeshift runs --database shop_demo · npx safeshift snapshots --database shop_demo · npx safeshift quiesced --database shop_demo',
      'Stop the embedded PostgreSQL: npx safeshift embedded stop',
    );
    return { exitCode: report.asExpected ? 0 : 3, json: report, text: lines.join('\n') };
  },
};
