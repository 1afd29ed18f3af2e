import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDbLedger } from '../../adapters/aws/dynamodb-ledger.ts';
import { regionOfArn, resolveDeployment } from '../../adapters/aws/sfn-stack.ts';
import { ensureEmbeddedServer } from '../../adapters/local/embedded-postgres.ts';
import { withDatabase } from '../../adapters/local/pg-connection.ts';
import { OptionError } from '../../core/errors.ts';
import { AwsConsoleBackend } from '../../console-server/aws-backend.ts';
import type { ConsoleBackend } from '../../console-server/backend.ts';
import { LocalConsoleBackend } from '../../console-server/local-backend.ts';
import { startConsoleServer } from '../../console-server/server.ts';
import type { Command, CommandInput } from '../command.ts';
import { HISTORY_OPTIONS, historyLocation, listOption, localDatabaseChoice } from '../common-options.ts';

const DEFAULT_PORT = '8421';

/**
 * `safeshift console`: serves the operator page (runs, snapshots, the record of quiesced APIs,
 * rehearsals, and the Restore button) against the local ledger, on 127.0.0.1 until Ctrl-C.
 */
export const consoleCommand: Command = {
  name: 'console',
  summary: 'serve the operator console (runs, snapshots, quiesced APIs, rehearsals, Restore) on 127.0.0.1',
  description:
    'Reads the ledger of the server --database-url points at (or the embedded PostgreSQL) and shows every database it knows. ' +
    "Restore runs the same restore state machine as `safeshift restore`, in this process: it stops the APIs the database's latest upgrade stopped " +
    '(or the --quiesce ones), sets the current data aside in a safety snapshot, and brings the snapshot back. ' +
    "Bound to loopback; a restore needs the page's session token and the same origin. With --host other than loopback, " +
    'the printed URL carries the token and every request needs it. Stop with Ctrl-C (it waits for a running restore to finish). ' +
    'With --stack (or --ledger-table and --restore-state-machine) it shows a deployed stack instead, with your own AWS credentials and region: ' +
    "Restore starts the restore state machine; compatible_from is not shown there (it needs the database's history).",
  examples: [
    'safeshift console',
    'safeshift console --port 9000 --database-url postgres://admin@db:5432/shop --dir db/migrations',
    'safeshift console --stack ShopDatabase --region eu-west-1',
    'AWS_REGION=eu-west-1 safeshift console --ledger-table safeshift-ledger ' +
      '--restore-state-machine arn:aws:states:eu-west-1:111122223333:stateMachine:safeshift-restore',
  ],
  options: {
    'database-url': {
      type: 'string',
      placeholder: 'URL',
      description: 'a database on the server whose ledger to show (or DATABASE_URL); without either, the embedded PostgreSQL',
    },
    database: {
      type: 'string',
      placeholder: 'NAME',
      multiple: true,
      description: 'show only this database (repeatable); default: every database the ledger knows',
    },
    port: { type: 'string', placeholder: 'N', default: DEFAULT_PORT, description: 'the port to listen on (0: any free port)' },
    host: {
      type: 'string',
      placeholder: 'HOST',
      default: '127.0.0.1',
      description: 'the address to listen on; anything but loopback exposes the console to the network',
    },
    dir: {
      type: 'string',
      placeholder: 'DIR',
      default: 'migrations',
      description: 'the migrations folder; its sibling verify/ holds the checks a restore runs',
    },
    quiesce: {
      type: 'string',
      placeholder: 'SPEC',
      multiple: true,
      description: "the APIs a restore stops: db-role:ROLE or http:URL (repeatable); default: those the database's latest run stopped",
    },
    ...HISTORY_OPTIONS,
    stack: {
      type: 'string',
      placeholder: 'NAME',
      description: "AWS: the stack with the SafeUpgrade construct; its <NAME>-restore state machine's tags name the ledger table",
    },
    region: { type: 'string', placeholder: 'REGION', description: "AWS: the region (default: the state machine ARN's, else AWS_REGION)" },
    'ledger-table': {
      type: 'string',
      placeholder: 'NAME',
      description: "AWS: the deployed stack's DynamoDB ledger table (with --restore-state-machine; your own AWS credentials and region)",
    },
    'restore-state-machine': { type: 'string', placeholder: 'ARN', description: 'AWS: the deployed restore state machine Restore starts' },
  },
  usesDatabase: true,
  async run(input) {
    const port = Number(input.values.port ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new OptionError(`--port needs a port number from 0 to 65535, not "${String(input.values.port)}"`);
    const host = String(input.values.host ?? '127.0.0.1');
    const databases = listOption(input, 'database');
    const quiesce = listOption(input, 'quiesce');
    const backend = await openBackend(input, { ...(databases.length ? { databases } : {}), ...(quiesce.length ? { quiesce } : {}) });
    let server;
    try {
      server = await startConsoleServer({ backend, host, port });
    } catch (error) {
      await backend.close();
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new OptionError(`port ${port} on ${host} is in use; pick another with --port (0 for any free one)`);
      throw error;
    }
    input.log.info(`safeshift console: ${server.openUrl}`);
    if (server.openUrl !== server.url) {
      input.log.warn(`listening on ${host}, beyond this machine: anyone with the URL above (it carries the session token) can restore databases`);
    }
    input.log.info(`reading ${backend.description}; press Ctrl-C to stop`);

    await untilSignal();
    // Stop taking requests first, so no restore starts while the ones running are waited for.
    await server.close();
    if (backend.hasRunningRestores()) input.log.info('stopping: waiting for the running restore to finish (Ctrl-C again to abandon it)');
    const abandoned = await closeUnlessInterrupted(backend);
    if (abandoned) {
      return {
        exitCode: 3,
        json: { url: server.url, abandoned: true },
        text: 'stopped while a restore was running: it was cut off; `safeshift runs` and `safeshift quiesced` show where it stopped',
      };
    }
    return { exitCode: 0, json: { url: server.url, abandoned: false }, text: 'console stopped' };
  },
};

/** The AWS backend when the command line names a deployment; else the local one (--database-url or embedded). */
async function openBackend(input: CommandInput, common: { databases?: string[]; quiesce?: string[] }): Promise<ConsoleBackend> {
  const target = await awsConsoleTarget(input);
  if (target) {
    const sfn = new SFNClient(target.region ? { region: target.region } : {});
    const ledger = new DynamoDbLedger({ tableName: target.ledgerTable, client: new DynamoDBClient(target.region ? { region: target.region } : {}) });
    return new AwsConsoleBackend({ ledgerTable: target.ledgerTable, restoreStateMachineArn: target.restoreStateMachineArn, sfn, ledger, ...common });
  }
  const { url } = localDatabaseChoice(input);
  const serverUrl = url ? withDatabase(url, 'postgres') : (await ensureEmbeddedServer({ log: (l) => input.log.info(l) })).url;
  return LocalConsoleBackend.open({
    serverUrl,
    migrationsDir: String(input.values.dir ?? 'migrations'),
    history: historyLocation(input),
    log: input.log,
    ...common,
  });
}

/** A deployed stack the console shows: its ledger table and restore state machine, and the region to reach them in. */
export interface AwsConsoleTarget {
  readonly ledgerTable: string;
  readonly restoreStateMachineArn: string;
  readonly region?: string;
}

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[^:]+:\d{12}:stateMachine:.+$/;

/**
 * The deployment a `console` command line names, or undefined for a local console: `--stack NAME`
 * finds the stack's restore state machine and reads the ledger table from its tags (as `upgrade
 * --stack` does); `--ledger-table` with `--restore-state-machine` names both directly.
 *
 * IAM with --stack: states:ListStateMachines and states:ListTagsForResource.
 *
 * @example
 * ```ts
 * await awsConsoleTarget(input) // { ledgerTable: 'Shop-Ledger', restoreStateMachineArn: 'arn:aws:states:…:stateMachine:Shop-restore', region: 'eu-west-1' }
 * ```
 */
export async function awsConsoleTarget(input: Pick<CommandInput, 'values'>, sfn?: SFNClient): Promise<AwsConsoleTarget | undefined> {
  const { stack, region, 'ledger-table': table, 'restore-state-machine': machine } = input.values;
  if (stack === undefined && table === undefined && machine === undefined) return undefined;
  if (input.values['database-url'] !== undefined) throw new OptionError('--database-url is for the local console; the AWS one reads the ledger table');
  const regionGiven = typeof region === 'string' && region ? region : undefined;
  if (stack !== undefined) {
    if (typeof stack !== 'string' || !stack) throw new OptionError('--stack needs the name of the stack with the SafeUpgrade construct');
    if (machine !== undefined) throw new OptionError('give either --stack or --restore-state-machine, not both');
    const deployment = await resolveDeployment({ stack }, 'restore', sfn ?? new SFNClient(regionGiven ? { region: regionGiven } : {}));
    const ledgerTable = typeof table === 'string' && table ? table : deployment.ledgerTable;
    if (!ledgerTable) {
      throw new OptionError(
        `state machine ${deployment.stateMachineArn} has no safeshift:ledger-table tag (it may not be allowed to read tags); give --ledger-table NAME too`,
      );
    }
    const foundRegion = regionGiven ?? regionOfArn(deployment.stateMachineArn);
    return { ledgerTable, restoreStateMachineArn: deployment.stateMachineArn, ...(foundRegion ? { region: foundRegion } : {}) };
  }
  if (typeof table !== 'string' || !table || typeof machine !== 'string' || !STATE_MACHINE_ARN.test(machine)) {
    throw new OptionError(
      'the AWS console needs --stack NAME, or both --ledger-table NAME and --restore-state-machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)',
    );
  }
  const foundRegion = regionGiven ?? regionOfArn(machine);
  return { ledgerTable: table, restoreStateMachineArn: machine, ...(foundRegion ? { region: foundRegion } : {}) };
}

/** Resolves at Ctrl-C (SIGINT) or SIGTERM; `cancel` stops listening. */
function untilSignal(): Promise<void> & { cancel: () => void } {
  let cancel = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    const stop = (): void => {
      cancel();
      resolve();
    };
    cancel = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return Object.assign(promise, { cancel });
}

/**
 * Closes the backend, which waits for its running restores. A second Ctrl-C stops waiting: the result
 * is true, and the caller reports the restore as cut off (the ledger says where it stopped).
 */
async function closeUnlessInterrupted(backend: ConsoleBackend): Promise<boolean> {
  const signal = untilSignal();
  try {
    return await Promise.race([backend.close().then(() => false), signal.then(() => true)]);
  } finally {
    signal.cancel();
  }
}
