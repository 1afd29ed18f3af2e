import { validate } from '../../core/validate.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, DIR_OPTION, historyLocation, migrationsDir } from '../common-options.ts';
import { plural, problemList } from '../format.ts';

/** `safeshift validate`: every problem between the folder and the history, in one report. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'check the folder against the history: checksums, missing files, order, names, syntax',
  description:
    'Reports every problem at once and changes nothing: CHECKSUM_MISMATCH (an applied file was edited), ' +
    'MISSING_MIGRATION (an applied file was deleted), OUT_OF_ORDER (a pending version below the applied maximum, unless --out-of-order), ' +
    'DUPLICATE_VERSION, BAD_MIGRATION_NAME, BAD_DIRECTIVE, REPAIR_NEEDED and SYNTAX_ERROR. Exit 0 when clean, 2 otherwise.',
  examples: ['safeshift validate --dir migrations', 'safeshift validate --json'],
  options: { ...DIR_OPTION, ...DATABASE_OPTIONS, 'out-of-order': { type: 'boolean', description: 'accept pending versions below the highest applied one' } },
  usesDatabase: true,
  async run(input) {
    const report = await validate({
      client: await input.database(),
      dir: migrationsDir(input),
      history: historyLocation(input),
      outOfOrder: !!input.values['out-of-order'],
    });
    const text = report.ok
      ? `Valid: ${plural(report.applied, 'applied migration')} match their files, ${report.pending} pending.`
      : `${plural(report.problems.length, 'problem')} found; nothing was changed:\n${problemList(report.problems)}`;
    return { exitCode: report.ok ? 0 : 2, json: report, text };
  },
};
