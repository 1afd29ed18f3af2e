import { baseline } from '../../core/baseline.ts';
import { checkIdentifierOption } from '../../core/identifiers.ts';
import { requireVersion } from '../../core/version.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, DIR_OPTION, LOCK_OPTIONS, durationOption, historyLocation, migrationsDir } from '../common-options.ts';
import { plural } from '../format.ts';

/** `safeshift baseline`: start the history of a database that existed before safeshift. */
export const baselineCommand: Command = {
  name: 'baseline',
  summary: 'start the history of an existing database, or adopt a Flyway history',
  description:
    '--version N records the database as being at version N: files up to N are never run. ' +
    "--from-flyway copies the applied migrations of flyway_schema_history into safeshift's history, " +
    'after checking each file against the checksum Flyway recorded. ' +
    "Refused (ALREADY_BASELINED) when safeshift's history already has rows.",
  examples: ['safeshift baseline --version 12', 'safeshift baseline --from-flyway --dir src/main/resources/db/migration'],
  options: {
    ...DIR_OPTION,
    ...DATABASE_OPTIONS,
    version: { type: 'string', placeholder: 'N', description: 'the version the database is at' },
    'from-flyway': { type: 'boolean', description: 'adopt the Flyway history instead' },
    'flyway-schema': { type: 'string', placeholder: 'NAME', default: 'public', description: 'schema of flyway_schema_history' },
    'flyway-table': { type: 'string', placeholder: 'NAME', default: 'flyway_schema_history', description: "name of Flyway's history table" },
    ...LOCK_OPTIONS,
  },
  usesDatabase: true,
  async run(input) {
    const result = await baseline({
      client: await input.database(),
      history: historyLocation(input),
      lockWaitMs: durationOption(input, 'lock-wait', '60s'),
      ...(typeof input.values.version === 'string' ? { version: requireVersion(input.values.version, '--version') } : {}),
      ...(input.values['from-flyway']
        ? {
            fromFlyway: {
              dir: migrationsDir(input),
              schema: checkIdentifierOption(String(input.values['flyway-schema'] ?? 'public'), '--flyway-schema'),
              table: checkIdentifierOption(String(input.values['flyway-table'] ?? 'flyway_schema_history'), '--flyway-table'),
            },
          }
        : {}),
    });
    return {
      exitCode: 0,
      json: { ok: true, ...result },
      text: `Baselined: recorded ${plural(result.recorded.length, 'history row')}; the database is at version ${result.schemaVersion ?? 'none'}.`,
    };
  },
};
