import { embeddedServerStatus, ensureEmbeddedServer, stopEmbeddedServer } from '../../adapters/local/embedded-postgres.ts';
import { OptionError } from '../../core/errors.ts';
import type { Command } from '../command.ts';

/** `safeshift embedded start|status|stop`: the local PostgreSQL that commands use without --database-url. */
export const embeddedCommand: Command = {
  name: 'embedded',
  summary: 'start, stop or show the embedded PostgreSQL used when no --database-url is given',
  description:
    'The embedded PostgreSQL (from npm, nothing to install) keeps its files in .safeshift/pg and listens on 127.0.0.1 on a free port. ' +
    'Commands start it on demand and leave it running so the next command is fast; `safeshift embedded stop` stops it.',
  examples: ['safeshift embedded status', 'safeshift embedded stop'],
  options: {},
  usesDatabase: false,
  async run(input) {
    const action = input.positionals[0] ?? 'status';
    const log = (line: string) => input.log.info(line);
    if (action === 'start') {
      const s = await ensureEmbeddedServer({ log });
      return {
        exitCode: 0,
        json: { running: true, port: s.port, started: s.started },
        text: `embedded PostgreSQL ${s.started ? 'started' : 'already running'} on 127.0.0.1:${s.port}`,
      };
    }
    if (action === 'stop') {
      const was = await stopEmbeddedServer({ log });
      return { exitCode: 0, json: { stopped: was }, text: was ? 'embedded PostgreSQL stopped' : 'embedded PostgreSQL was not running' };
    }
    if (action === 'status') {
      const s = await embeddedServerStatus();
      return { exitCode: 0, json: s, text: s.running ? `running on 127.0.0.1:${s.port} (data in ${s.dataDir})` : `not running (data in ${s.dataDir})` };
    }
    throw new OptionError(`embedded takes start, status or stop, not "${action}"`);
  },
};
