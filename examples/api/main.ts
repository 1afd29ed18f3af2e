/**
 * Runs the example shop API for people:
 *
 * ```sh
 * tsx examples/api/main.ts --database-url postgres://shop_app:pw@127.0.0.1:5432/shop --port 8080
 * ```
 *
 * `DATABASE_URL` works instead of `--database-url`. Ctrl-C stops it after the writes in flight finish.
 *
 * `--state-file PATH` (or `SHOP_API_STATE_FILE`) records the maintenance mode there on every PUT, so
 * that a restart comes back in the mode it was last put in: give one whenever safeshift quiesces the
 * API, or an API restarted mid-upgrade takes writes while safeshift believes it quiet. Without one
 * (the default, for trying it by hand) every start is in normal mode and nothing is written to disk.
 */
import { parseArgs } from 'node:util';
import { redactUrl } from '../../src/adapters/local/pg-connection.ts';
import { startShopApi } from './server.ts';

const USAGE = `usage: tsx examples/api/main.ts --database-url URL [--port 8080] [--state-file PATH]

Serves the example shop on 127.0.0.1:
  POST /orders {"customerId":1,"amountCents":1250}   GET /orders/count   GET /health
  GET|PUT /maintenance {"mode":"maintenance"|"normal"}   (safeshift's http: quiescer)

  --database-url URL   the app role's URL (or DATABASE_URL)
  --port N             0 picks a free one (default 8080)
  --state-file PATH    record the mode there on every PUT and start in the mode recorded, so a
                       restart mid-upgrade stays in maintenance (or SHOP_API_STATE_FILE). Without
                       it the mode is kept in memory only: every start is in normal mode.`;

const err = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  let values: { 'database-url'?: string; port?: string; 'state-file'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        'database-url': { type: 'string' },
        port: { type: 'string', default: '8080' },
        'state-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    err(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  const port = Number(values.port);
  // An empty variable is "not set", not a file named "".
  const envStateFile = process.env.SHOP_API_STATE_FILE;
  const stateFile = values['state-file'] ?? (envStateFile === '' ? undefined : envStateFile);
  if (!databaseUrl) {
    err(`--database-url (or DATABASE_URL) is required\n\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    err(`--port must be a port number (0-65535), not "${values.port}"`);
    return 2;
  }
  const api = await startShopApi({ databaseUrl, port, ...(stateFile ? { stateFile } : {}), log: (line) => err(`shop-api: ${line}`) });
  err(`shop API on ${api.url} (database ${redactUrl(databaseUrl)}); maintenance endpoint ${api.maintenanceUrl}`);
  err(
    stateFile ? `mode ${api.startMode}, recorded in ${stateFile}` : 'mode normal, kept in memory only (no --state-file): a restart comes back in normal mode',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  err('stopping: letting writes in flight finish...');
  await api.close();
  const { acknowledged, refused } = api.stats();
  err(`stopped: ${acknowledged} writes acknowledged, ${refused} refused`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    err(`shop API failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
