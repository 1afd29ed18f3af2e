import { OptionError } from '../../core/errors.ts';
import { migrate } from '../../core/migrate.ts';
import { requireVersion } from '../../core/version.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, DIR_OPTION, LOCK_OPTIONS, durationOption, historyLocation, migrationsDir } from '../common-options.ts';
import { plural, table } from '../format.ts';

/** `safeshift migrate`: apply the pending migrations. */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending migrations, each in its own transaction with its history row',
  description:
    'Checks names, checksums, order, syntax and lint first and refuses (exit 2) before changing anything if any check fails. ' +
    'Then applies each pending migration in its own transaction together with its history row; ' +
    'a no-transaction migration runs statement by statement and records its progress. ' +
    'A second runner waits for the first (--lock-wait) and then fails with LOCKED. Exit 1: ' +
    'a migration failed and was rolled back; exit 3: a no-transaction migration failed midway and needs `repair`.',
  examples: ['safeshift migrate --dir migrations', 'safeshift migrate --target 1.4 --dry-run', 'DATABASE_URL=postgres://app@db/app safeshift migrate --json'],
  options: {
    ...DIR_OPTION,
    ...DATABASE_OPTIONS,
    target: { type: 'string', placeholder: 'V', description: 'apply up to and including this version' },
    'dry-run': { type: 'boolean', description: 'print the plan and change nothing' },
    'out-of-order': { type: 'boolean', description: 'apply pending versions below the highest applied one' },
    'lock-timeout': {
      type: 'string',
      placeholder: 'DURATION',
      default: '5s',
      description: 'lock_timeout of each migration without its own directive (0 = none)',
    },
    'lock-retries': { type: 'string', placeholder: 'N', default: '3', description: 'retries of a migration that could not get its locks in time' },
    ...LOCK_OPTIONS,
  },
  usesDatabase: true,
  createsDatabase: true,
  async run(input) {
    const retries = Number(input.values['lock-retries'] ?? 3);
    if (!Number.isInteger(retries) || retries < 0 || retries > 100) {
      throw new OptionError(`--lock-retries needs a whole number from 0 to 100, not "${String(input.values['lock-retries'])}"`);
    }
    const result = await migrate({
      client: await input.database(),
      dir: migrationsDir(input),
      history: historyLocation(input),
      ...(input.values.target ? { target: requireVersion(String(input.values.target), '--target') } : {}),
      outOfOrder: !!input.values['out-of-order'],
      dryRun: !!input.values['dry-run'],
      lockWaitMs: durationOption(input, 'lock-wait', '60s'),
      lockTimeoutMs: durationOption(input, 'lock-timeout', '5s'),
      lockRetries: retries,
      log: input.log,
    });
    for (const w of result.warnings) {
      input.log.warn(
        `${w.allowed ? 'allowed' : 'warning'} ${w.file}:${w.line}:${w.column} [${w.rule}] ` +
          `${w.message}${w.allowed ? ` (reason: ${w.allowed.reason})` : `\n  fix: ${w.fix}`}`,
      );
    }
    const lines: string[] = [];
    if (result.dryRun) {
      lines.push(
        result.planned.length === 0
          ? `Nothing to apply: the database is at version ${result.fromVersion ?? 'none'}.`
          : `Dry run: would apply ${plural(result.planned.length, 'migration')} (version ${result.fromVersion ?? 'none'} -> ${result.toVersion ?? 'none'}):`,
      );
      if (result.planned.length)
        lines.push(
          table(
            ['version', 'script', 'phase', 'transaction'],
            result.planned.map((p) => [p.version ?? 'R', p.script, p.phase, p.transaction ? 'yes' : 'no']),
          ),
        );
    } else if (result.applied.length === 0) {
      lines.push(`Nothing to apply: the database is at version ${result.fromVersion ?? 'none'}.`);
    } else {
      lines.push(
        `Applied ${plural(result.applied.length, 'migration')}: ` +
          `version ${result.fromVersion ?? 'none'} -> ${result.toVersion ?? 'none'} (run ${result.runId}).`,
      );
      lines.push(
        table(
          ['version', 'script', 'phase', 'ms'],
          result.applied.map((a) => [a.version ?? 'R', a.script, a.phase, a.executionMs]),
        ),
      );
    }
    return { exitCode: 0, json: { ok: true, ...result }, text: lines.join('\n') };
  },
};
