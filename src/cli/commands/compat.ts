import { checkCompatibility } from '../../core/compat.ts';
import { OptionError } from '../../core/errors.ts';
import { requireVersion } from '../../core/version.ts';
import type { Command } from '../command.ts';
import { DATABASE_OPTIONS, historyLocation } from '../common-options.ts';

/** `safeshift compat --app-version N`: may code built for schema N run on this database? */
export const compatCommand: Command = {
  name: 'compat',
  summary: 'tell whether an app built for schema version N may run on this database',
  description:
    'Expand migrations keep old code working; a contract migration raises compatible_from to its version. ' +
    'Exit 0 when the app may run, 1 with the reason when not. ' +
    "Use it in an app's start-up, or before rolling code back while the data stays new. The same check is the library function assertCompatible().",
  examples: ['safeshift compat --app-version 41', 'safeshift compat --app-version 40 --json'],
  options: { ...DATABASE_OPTIONS, 'app-version': { type: 'string', placeholder: 'N', description: 'the schema version the app was built for (required)' } },
  usesDatabase: true,
  async run(input) {
    const text = input.values['app-version'];
    if (typeof text !== 'string') throw new OptionError('compat needs --app-version N, the schema version the app was built for');
    const verdict = await checkCompatibility({
      client: await input.database(),
      appVersion: requireVersion(text, '--app-version'),
      history: historyLocation(input),
    });
    return {
      exitCode: verdict.compatible ? 0 : 1,
      json: verdict,
      text:
        `${verdict.compatible ? 'compatible' : 'INCOMPATIBLE'}: app version ${verdict.appVersion} on schema ` +
        `${verdict.schemaVersion ?? 'none'} (compatible from ${verdict.compatibleFrom ?? 'none'}): ${verdict.reason}`,
    };
  },
};
