import { info } from '../../core/info.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, DIR_OPTION, historyLocation, migrationsDir } from '../common-options.ts';
import { plural, problemList, table } from '../format.ts';

/** `safeshift info`: every migration with its state, and the compatibility record. */
export const infoCommand: Command = {
  name: 'info',
  summary: 'list applied and pending migrations, the schema version and compatible_from',
  description:
    'Reads the history and the migrations folder and changes nothing. States: applied, baseline, failed, pending, ' +
    'missing (applied, file gone), changed (applied, file edited), out-of-order, below-baseline.',
  examples: ['safeshift info --dir migrations', 'safeshift info --json | jq .schemaVersion'],
  options: { ...DIR_OPTION, ...DATABASE_OPTIONS },
  usesDatabase: true,
  async run(input) {
    const report = await info({ client: await input.database(), dir: migrationsDir(input), history: historyLocation(input) });
    const lines = [
      `Schema version: ${report.schemaVersion ?? 'none'}   compatible from: ${report.compatibleFrom ?? 'none'}` +
        `${report.raisedBy ? ` (raised by ${report.raisedBy})` : ''}   pending: ${report.pending}`,
    ];
    if (report.migrations.length) {
      lines.push(
        table(
          ['version', 'description', 'type', 'phase', 'state', 'installed on', 'ms'],
          report.migrations.map((m) => [
            m.version ?? 'R',
            m.description,
            m.type,
            m.phase,
            m.state,
            m.installedOn?.replace('T', ' ').slice(0, 19),
            m.executionMs,
          ]),
        ),
      );
    } else {
      lines.push('No migrations found and no history recorded.');
    }
    if (report.problems.length) lines.push(`\n${plural(report.problems.length, 'problem')} (see \`safeshift validate\`):\n${problemList(report.problems)}`);
    return { exitCode: 0, json: report, text: lines.join('\n') };
  },
};
