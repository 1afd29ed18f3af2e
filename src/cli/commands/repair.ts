import { repair } from '../../core/repair.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, DIR_OPTION, LOCK_OPTIONS, durationOption, historyLocation, migrationsDir } from '../common-options.ts';

/** `safeshift repair`: clear failed entries and realign checksums after a person fixed things. */
export const repairCommand: Command = {
  name: 'repair',
  summary: 'remove failed history entries and realign checksums with the files (after a manual fix)',
  description:
    'Use it after a no-transaction migration failed midway and you finished or undid its statements by hand, or after a harmless edit (comments, ' +
    'whitespace) to an applied file. It never runs migration SQL. --dry-run shows what it would change.',
  examples: ['safeshift repair --dry-run', 'safeshift repair --dir migrations'],
  options: { ...DIR_OPTION, ...DATABASE_OPTIONS, 'dry-run': { type: 'boolean', description: 'show what would change, change nothing' }, ...LOCK_OPTIONS },
  usesDatabase: true,
  async run(input) {
    const r = await repair({
      client: await input.database(),
      dir: migrationsDir(input),
      history: historyLocation(input),
      dryRun: !!input.values['dry-run'],
      lockWaitMs: durationOption(input, 'lock-wait', '60s'),
    });
    const verb = r.dryRun ? 'would remove' : 'removed';
    const removed = r.removedFailed.map((f) => `${f.script}${f.statementsTotal ? ` (${f.statementsApplied}/${f.statementsTotal} statements had run)` : ''}`);
    const lines = [
      r.removedFailed.length ? `${verb} failed entries: ${removed.join(', ')}` : 'no failed entries',
      r.realigned.length
        ? `${r.dryRun ? 'would realign' : 'realigned'} checksums: ${r.realigned.map((x) => x.script).join(', ')}`
        : 'all checksums match their files',
    ];
    if (r.stillMissing.length) lines.push(`still missing from the folder (repair does not forget applied migrations): ${r.stillMissing.join(', ')}`);
    return { exitCode: 0, json: { ok: true, ...r }, text: lines.join('\n') };
  },
};
