import { existsSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDbLedger } from '../adapters/aws/dynamodb-ledger.ts';
import { defaultVerifyDir, migrationsBundle } from '../adapters/aws/sfn-migrations-checksum.ts';
import { regionOfArn, resolveDeployment, type Deployment } from '../adapters/aws/sfn-stack.ts';
import { SfnTrigger, type ExecutionOutcome, type StartedRun } from '../adapters/aws/sfn-trigger.ts';
import { OptionError, SafeshiftError } from '../core/errors.ts';
import { requireVersion } from '../core/version.ts';
import { listOption, quiesceSafety } from './common-options.ts';
import type { Ledger, RunRecord } from '../ports.ts';
import type { RunInput } from '../steps/state.ts';

/** What the CLI sends: the Lambdas fill in the database when the deployment's tags did not name it. */
type AwsRun = Omit<RunInput, 'runId' | 'database'> & { readonly database?: string };
import type { CommandInput, CommandOutput, OptionSpec } from './command.ts';
import { runVersions, runsTable } from './run-versions.ts';

/** The options that send a command to a deployed SafeUpgrade instead of running it locally. */
export const AWS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'state-machine-arn': {
    type: 'string',
    placeholder: 'ARN',
    description: "run on AWS: the deployed state machine (upgrade, restore: its own machine; runs: any of the stack's)",
  },
  stack: {
    type: 'string',
    placeholder: 'NAME',
    description: 'run on AWS: the stack with the SafeUpgrade construct (finds the <NAME>-upgrade|restore state machine)',
  },
  wait: { type: 'boolean', description: 'on AWS: follow the execution to its end and exit with its outcome (otherwise start it and exit 0)' },
  'run-name': {
    type: 'string',
    placeholder: 'NAME',
    description: 'on AWS: the execution name; starting the same name again follows the first run instead of starting another',
  },
  region: { type: 'string', placeholder: 'REGION', description: "on AWS: the region (default: the ARN's, else AWS_REGION)" },
};

/** What the AWS side is handed: the SDK clients, so tests can give mocked ones. */
export interface AwsModeDeps {
  readonly sfn?: SFNClient;
  readonly ledger?: (tableName: string) => Ledger;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * True when a command line names a deployment (`--state-machine-arn` or `--stack`), so the command
 * runs on AWS.
 *
 * @example
 * ```ts
 * if (isAwsMode(input)) return runOnAws(input, 'upgrade');
 * ```
 */
export function isAwsMode(input: CommandInput): boolean {
  return typeof input.values['state-machine-arn'] === 'string' || typeof input.values.stack === 'string';
}

/**
 * `safeshift upgrade|restore|runs` against a deployed SafeUpgrade: starts the state machine (the
 * run name makes a repeated start follow the first), streams its states to stderr with `--wait`,
 * and exits with DESIGN.md's codes; `runs` reads the deployment's DynamoDB ledger.
 *
 * @example
 * ```ts
 * // safeshift upgrade --stack Shop --target 5 --wait --run-name release-42
 * const out = await runOnAws(input, 'upgrade');
 * ```
 */
export async function runOnAws(input: CommandInput, verb: 'upgrade' | 'restore' | 'runs', deps: AwsModeDeps = {}): Promise<CommandOutput> {
  const v = input.values;
  const arn = typeof v['state-machine-arn'] === 'string' ? v['state-machine-arn'] : undefined;
  const stack = typeof v.stack === 'string' ? v.stack : undefined;
  if (arn && stack) throw new OptionError('give either --state-machine-arn or --stack, not both');
  if (v['database-url'] || v.database) throw new OptionError('--database-url and --database are for local runs; on AWS the deployment knows its database');
  const region = typeof v.region === 'string' ? v.region : arn ? regionOfArn(arn) : undefined;
  const sfn = deps.sfn ?? new SFNClient(region ? { region } : {});
  const workflow = verb === 'runs' ? 'upgrade' : verb;
  const ref = arn ? { stateMachineArn: arn } : stack ? { stack } : undefined;
  if (!ref) throw new OptionError('name the deployment with --stack NAME or --state-machine-arn ARN');
  const deployment = await resolveDeployment(ref, workflow, sfn);
  const ledgerOf = deps.ledger ?? ((tableName: string) => new DynamoDbLedger({ tableName, client: new DynamoDBClient(region ? { region } : {}) }));
  if (verb === 'runs') return listRuns(input, deployment, ledgerOf);

  const run = verb === 'upgrade' ? upgradeRun(input, deployment) : restoreRun(input, deployment);
  const trigger = new SfnTrigger({ client: sfn, log: (line) => input.log.info(line), ...(deps.sleep ? { sleep: deps.sleep } : {}) });
  const runName = typeof v['run-name'] === 'string' ? v['run-name'] : undefined;
  const started = await trigger.start(deployment.stateMachineArn, run, runName);
  if (!v.wait) {
    return {
      exitCode: 0,
      json: { ...started, stateMachineArn: deployment.stateMachineArn },
      text: `${started.attached ? 'following' : 'started'} ${started.executionArn}\nrun id ${started.runId}; \`--wait\` follows it to its end`,
    };
  }
  const outcome = await trigger.follow(started.executionArn);
  const record = deployment.ledgerTable ? await readRun(ledgerOf(deployment.ledgerTable), started.runId, input) : undefined;
  return report(started, outcome, record);
}

function upgradeRun(input: CommandInput, deployment: Deployment): AwsRun {
  const v = input.values;
  const strategy = typeof v.strategy === 'string' ? v.strategy : (deployment.strategy ?? 'in-place');
  if (strategy !== 'in-place' && strategy !== 'swap') throw new OptionError(`--strategy is in-place or swap, not "${strategy}"`);
  const targetVersion = typeof v.target === 'string' ? requireVersion(v.target, '--target').text : null;
  checkMigrations(input, deployment);
  const quiesce = listOption(input, 'quiesce');
  return {
    kind: 'upgrade',
    targetVersion,
    strategy,
    rehearsal: !v['no-rehearsal'],
    ...quiesceSafety(input),
    ...(deployment.database ? { database: deployment.database } : {}),
    ...(quiesce.length > 0 ? { quiesce } : {}),
  };
}

function restoreRun(input: CommandInput, deployment: Deployment): AwsRun {
  const snapshotId = input.values.snapshot;
  if (typeof snapshotId !== 'string' || !snapshotId) throw new OptionError('restore needs --snapshot ID; `safeshift snapshots` lists them');
  const quiesce = listOption(input, 'quiesce');
  // The Choice states read strategy and rehearsal, so they are always in the input.
  return {
    kind: 'restore',
    snapshotId,
    strategy: 'in-place',
    rehearsal: false,
    ...quiesceSafety(input),
    ...(deployment.database ? { database: deployment.database } : {}),
    ...(quiesce.length > 0 ? { quiesce } : {}),
  };
}

/**
 * Refuses to upgrade with other migrations than the deployment bundled: the local folder's checksum
 * must be the one the stack was deployed with. Without a local folder there is nothing to compare.
 */
function checkMigrations(input: CommandInput, deployment: Deployment): void {
  const dir = String(input.values.dir ?? 'migrations');
  if (!deployment.migrationsChecksum) return;
  if (!existsSync(dir)) {
    input.log.warn(
      `${dir} does not exist here, so the deployed migrations (checksum ${deployment.migrationsChecksum.slice(0, 12)}…) were not compared with it`,
    );
    return;
  }
  const local = migrationsBundle(dir, defaultVerifyDir(dir)).checksum;
  if (local !== deployment.migrationsChecksum) {
    throw new SafeshiftError(
      'CHECKSUM_MISMATCH',
      `the deployed state machine bundles other migrations than ${dir} (checksum ${deployment.migrationsChecksum.slice(0, 12)}… deployed, ` +
        `${local.slice(0, 12)}… here); deploy first (cdk deploy), or point --dir at the folder that was deployed. Nothing was started.`,
    );
  }
}

async function readRun(ledger: Ledger, runId: string, input: CommandInput): Promise<RunRecord | undefined> {
  try {
    return await ledger.getRun(runId);
  } catch (error) {
    input.log.warn(`could not read run ${runId} from the ledger (${(error as Error).name}); the outcome below comes from the execution history`);
    return undefined;
  }
}

function report(started: StartedRun, outcome: ExecutionOutcome, record: RunRecord | undefined): CommandOutput {
  const error = record?.error ?? outcome.failure;
  const headline: Record<number, string> = {
    0: 'SUCCEEDED',
    1: 'FAILED and ROLLED BACK: production is as it was before the run; every API was resumed',
    2: 'REFUSED before production changed',
    3: 'FAILED and NEEDS AN OPERATOR',
  };
  const lines = [
    `${started.runName} (run id ${started.runId}): ${headline[outcome.exitCode] ?? outcome.status}`,
    ...(record ? [`version ${runVersions(record)}${record.snapshotId ? `, snapshot ${record.snapshotId}` : ''}`] : []),
    ...(error ? [`error [${error.code}]${error.migration ? ` in ${error.migration}` : ''}: ${error.message}`] : []),
    ...(outcome.error && outcome.exitCode === 3 && !error ? [`the execution ended with ${outcome.error}`] : []),
    `${outcome.transitions} state transitions; execution ${started.executionArn}`,
  ];
  return {
    exitCode: outcome.exitCode,
    json: {
      ...started,
      status: outcome.status,
      exitCode: outcome.exitCode,
      error: outcome.error,
      failure: error,
      transitions: outcome.transitions,
      timeline: outcome.timeline,
      run: record,
    },
    text: lines.join('\n'),
  };
}

async function listRuns(input: CommandInput, deployment: Deployment, ledgerOf: (table: string) => Ledger): Promise<CommandOutput> {
  if (!deployment.ledgerTable)
    throw new SafeshiftError(
      'BAD_OPTION',
      `state machine ${deployment.stateMachineArn} has no safeshift:ledger-table tag (states:ListTagsForResource denied?), so its ledger cannot be found`,
    );
  const ledger = ledgerOf(deployment.ledgerTable);
  if (typeof input.values.run === 'string') {
    const run = await ledger.getRun(input.values.run);
    if (!run) throw new SafeshiftError('RUN_NOT_FOUND', `no run ${input.values.run} is recorded in ${deployment.ledgerTable}`);
    return { exitCode: 0, json: run, text: JSON.stringify(run, null, 2) };
  }
  const runs = await ledger.listRuns(deployment.database, Number(input.values.limit ?? 20));
  const text = runs.length === 0 ? `no runs recorded for ${deployment.database ?? 'this deployment'}` : runsTable(runs);
  return { exitCode: 0, json: runs, text };
}
