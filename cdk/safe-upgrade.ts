import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Annotations, ArnFormat, CfnOutput, Stack, Tags, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { StepEnvironment } from '../lambdas/environment.ts';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import { StackTagKeys, stateMachineNameOf } from '../src/adapters/aws/sfn-naming.ts';
import { defaultVerifyDir } from '../src/adapters/aws/sfn-migrations-checksum.ts';
import { DEFAULT_HISTORY, type HistoryLocation } from '../src/core/history.ts';
import { checkIdentifierOption } from '../src/core/identifiers.ts';
import type { StepName } from '../src/steps/registry.ts';
import { LedgerTable } from './ledger-table.ts';
import { stageMigrations } from './migrations-asset.ts';
import { StepLambda } from './step-lambda.ts';
import { stepPolicyStatements, type StepPermissionTarget } from './step-permissions.ts';
import { WorkflowMachine } from './workflow-machine.ts';

const STATE_MACHINES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'state-machines');

export interface SafeUpgradeProps {
  /** The production database: an RDS for PostgreSQL DB instance or an Aurora PostgreSQL DB cluster, created or imported. */
  readonly database: rds.IDatabaseInstance | rds.IDatabaseCluster;
  /** The secret with the database's `username` and `password` (the RDS secret format). Only its ARN reaches the Lambdas. */
  readonly credentials: secretsmanager.ISecret;
  /** The database's VPC: the step Lambdas run in it. It needs a route to the RDS, DynamoDB, Secrets Manager and Lambda APIs (VPC endpoints or NAT). */
  readonly vpc: ec2.IVpc;
  /** @default the VPC's private subnets (with egress, else isolated) */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** @default a new security group, allowed in on the database's port when the database's connections know it */
  readonly securityGroups?: readonly ec2.ISecurityGroup[];
  /** The migrations folder (V…__….sql/.ts/.js, R__….sql), bundled into the steps that plan and apply migrations. */
  readonly migrationsDir: string;
  /** The verify checks (`*.sql`). @default the `verify` folder beside migrationsDir, when there is one */
  readonly verifyDir?: string;
  /** The APIs to quiesce during an upgrade or restore: `lambda:FUNCTION_NAME_OR_ARN`. @default none */
  readonly quiesce?: readonly string[];
  /** How an upgrade is promoted when the run does not say. `swap` migrates a clone and swaps it in. @default 'in-place' */
  readonly strategy?: 'in-place' | 'swap';
  /**
   * When the rehearsal state machine runs. A rehearsal with nothing pending ends after its preflight,
   * so a daily one costs a snapshot and a clone only on the days something is waiting to be deployed.
   * @default rate(1 day)
   */
  readonly rehearsalSchedule?: scheduler.ScheduleExpression | string;
  /** Where the failed-execution alarms notify. @default the alarms have no action */
  readonly alarmTopic?: sns.ITopic;
  /** The customer managed KMS key of the database's storage; restores need kms:CreateGrant on it. @default none (AWS managed key) */
  readonly databaseKey?: kms.IKey;
  /** The PostgreSQL database to connect to. @default the secret's `dbname`, else `postgres` */
  readonly databaseName?: string;
  /** Where the migration history table is. @default public.safeshift_schema_history */
  readonly history?: HistoryLocation;
  /**
   * The state machines are named `<namePrefix>-upgrade`, `-restore` and `-rehearsal`, which is how
   * `safeshift upgrade --stack NAME` finds them.
   * @default the stack's name
   */
  readonly namePrefix?: string;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * safeshift on AWS for one PostgreSQL database: the upgrade, restore and rehearsal state machines
 * (deployed from state-machines/*.asl.json unchanged), one Lambda per step, the ledger table, a
 * rehearsal schedule and alarms. Each step's role may do what that step's adapters do to this
 * database and to what safeshift makes of it (tagged `ss-*` snapshots and clones), nothing else.
 *
 * @example
 * ```ts
 * const upgrade = new SafeUpgrade(this, 'Upgrade', {
 *   database: db, credentials: db.secret!, vpc, migrationsDir: 'migrations',
 *   quiesce: ['lambda:orders-api'], alarmTopic: topic,
 * });
 * // a pipeline: npx safeshift upgrade --stack MyStack --target 5 --wait
 * ```
 */
export class SafeUpgrade extends Construct {
  readonly upgradeStateMachine: sfn.StateMachine;
  readonly restoreStateMachine: sfn.StateMachine;
  readonly rehearsalStateMachine: sfn.StateMachine;
  readonly ledgerTable: LedgerTable['table'];
  /** The step functions, by step name. */
  readonly functions: Readonly<Record<StepName, lambda.IFunction>>;
  readonly rehearsalSchedule: scheduler.Schedule;
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  /** The checksum of the bundled migrations and verify checks (also the MigrationsChecksum output). */
  readonly migrationsChecksum: string;

  constructor(scope: Construct, id: string, props: SafeUpgradeProps) {
    super(scope, id);
    const settings = validate(props, Stack.of(this).stackName);
    const stack = Stack.of(this);
    const { kind, databaseId } = settings;

    const staged = stageMigrations(settings.migrationsDir, settings.verifyDir);
    this.migrationsChecksum = staged.checksum;
    this.ledgerTable = new LedgerTable(this, 'Ledger').table;
    this.securityGroups = props.securityGroups ?? [this.defaultSecurityGroup(props)];

    const quiesceFunctionArns = settings.quiesce.map((spec) => functionArnOf(stack, spec));
    // A cluster may come without its instance identifiers (the warning below says what that costs).
    const cluster = props.database as Partial<Pick<rds.IDatabaseCluster, 'instanceIdentifiers'>>;
    const target: StepPermissionTarget = {
      databaseKind: kind,
      databaseId,
      credentials: props.credentials,
      ledger: this.ledgerTable,
      quiesceFunctionArns,
      clusterInstanceIds: kind === 'cluster' ? (cluster.instanceIdentifiers ?? []) : [],
      ...(props.databaseKey ? { databaseKey: props.databaseKey } : {}),
    };
    if (kind === 'cluster' && target.clusterInstanceIds.length === 0) {
      Annotations.of(this).addWarningV2(
        'safeshift:clusterInstances',
        'the Aurora cluster was given without its instanceIdentifiers, so the step roles may not delete the ' +
          'instances a swap or restore leaves in the retired cluster; cleanup will report it and an operator deletes them',
      );
    }
    const environment = {
      [StepEnvironment.ledgerTable]: this.ledgerTable.tableName,
      [StepEnvironment.secretArn]: props.credentials.secretArn,
      [StepEnvironment.databaseKind]: kind,
      [StepEnvironment.databaseId]: databaseId,
      [StepEnvironment.historySchema]: settings.history.schema,
      [StepEnvironment.historyTable]: settings.history.table,
      [StepEnvironment.quiesce]: JSON.stringify(settings.quiesce),
      [StepEnvironment.migrationsChecksum]: staged.checksum,
      ...(props.databaseName ? { [StepEnvironment.databaseName]: props.databaseName } : {}),
    };

    const functions = {} as Record<StepName, lambda.IFunction>;
    // STEP_NEEDS has every step of STEPS (its type says so), without loading the steps into the CDK app.
    for (const step of Object.keys(STEP_NEEDS) as StepName[]) {
      const stepLambda = new StepLambda(this, pascal(step), {
        step,
        vpc: props.vpc,
        securityGroups: this.securityGroups,
        environment,
        staged,
        ...(props.vpcSubnets ? { vpcSubnets: props.vpcSubnets } : {}),
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      });
      for (const port of STEP_NEEDS[step].ports) {
        for (const statement of stepPolicyStatements(this, port, target)) stepLambda.role.addToPolicy(statement);
      }
      functions[step] = stepLambda.function;
    }
    this.functions = functions;
    this.acknowledgeSafeshiftPatterns();

    const machine = (workflow: 'upgrade' | 'restore' | 'rehearsal') => {
      const wm = new WorkflowMachine(this, pascal(workflow), {
        definitionFile: path.join(STATE_MACHINES_DIR, `${workflow}.asl.json`),
        functions,
        stateMachineName: stateMachineNameOf(settings.namePrefix, workflow),
        ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      });
      const tags: Record<string, string> = {
        [StackTagKeys.workflow]: workflow,
        [StackTagKeys.database]: databaseId,
        [StackTagKeys.ledgerTable]: this.ledgerTable.tableName,
        [StackTagKeys.strategy]: settings.strategy,
        [StackTagKeys.migrationsChecksum]: staged.checksum,
      };
      for (const [key, value] of Object.entries(tags)) Tags.of(wm.stateMachine).add(key, value, { includeResourceTypes: ['AWS::StepFunctions::StateMachine'] });
      return wm.stateMachine;
    };
    this.upgradeStateMachine = machine('upgrade');
    this.restoreStateMachine = machine('restore');
    this.rehearsalStateMachine = machine('rehearsal');

    this.rehearsalSchedule = new scheduler.Schedule(this, 'RehearsalSchedule', {
      description: `safeshift rehearsal of ${settings.namePrefix}: pending migrations on a clone of production`,
      schedule: settings.schedule,
      target: new targets.StepFunctionsStartExecution(this.rehearsalStateMachine, {
        // Each invocation's own id is the run id; a retried invocation would get a new one and
        // rehearse twice, so the schedule does not retry (the next one comes soon enough).
        input: scheduler.ScheduleTargetInput.fromObject({
          run: {
            runId: scheduler.ContextAttribute.executionId,
            kind: 'rehearsal',
            database: databaseId,
            strategy: settings.strategy,
            rehearsal: true,
            quiesce: [],
          },
        }),
        retryAttempts: 0,
      }),
    });

    const output = (name: string, value: string, description: string) => new CfnOutput(this, name, { value, description });
    output('UpgradeStateMachineArn', this.upgradeStateMachine.stateMachineArn, 'safeshift upgrade --state-machine-arn <this> --target V --wait');
    output('RestoreStateMachineArn', this.restoreStateMachine.stateMachineArn, 'safeshift restore --state-machine-arn <this> --snapshot ID --wait');
    output('RehearsalStateMachineArn', this.rehearsalStateMachine.stateMachineArn, 'runs on the rehearsal schedule');
    output('LedgerTableName', this.ledgerTable.tableName, 'the ledger of runs, snapshots and quiesced APIs');
    output('DatabaseIdentifier', databaseId, 'the database these state machines upgrade');
    output('MigrationsChecksum', staged.checksum, 'checksum of the bundled migrations and verify checks; safeshift upgrade --stack … --dir DIR compares it');
  }

  private defaultSecurityGroup(props: SafeUpgradeProps): ec2.ISecurityGroup {
    const sg = new ec2.SecurityGroup(this, 'StepSecurityGroup', {
      vpc: props.vpc,
      allowAllOutbound: true,
      description: 'safeshift step Lambdas: the database and the AWS APIs',
    });
    if (props.database.connections.defaultPort) props.database.connections.allowDefaultPortFrom(sg, 'safeshift step Lambdas');
    else
      Annotations.of(this).addWarningV2(
        'safeshift:databasePort',
        "the database was imported without its port, so the step Lambdas' security group was not allowed in; allow it on the database's security group",
      );
    return sg;
  }

  /** cdk-nag reports every `*` in a resource; these are safeshift's name patterns, each narrowed by a tag condition. */
  private acknowledgeSafeshiftPatterns(): void {
    // cdk-nag names a finding by the resource as rendered: tokens as <AWS::Region>, literals as they are.
    const stack = Stack.of(this);
    const part = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    const prefix = `arn:${part(stack.partition, 'AWS::Partition')}:rds:${part(stack.region, 'AWS::Region')}:${part(stack.account, 'AWS::AccountId')}`;
    const arn = (type: string, name: string) => `Resource::${prefix}:${type}:${name}`;
    const reasons = {
      'ss-*':
        'every snapshot and clone safeshift makes is named ss-<role>-<database>-<run>; creating, changing and deleting them is ' +
        'further restricted to those tagged safeshift:database = this database (aws:RequestTag, aws:ResourceTag, rds:snapshot-tag)',
      '*': "a restore only uses production's subnet group and parameter/option groups, whose names an imported database does not reveal; it cannot change them",
    };
    for (const type of ['db', 'snapshot', 'cluster', 'cluster-snapshot']) {
      Validations.of(this).acknowledge({ id: `AwsSolutions-IAM5[${arn(type, 'ss-*')}]`, reason: reasons['ss-*'] });
    }
    for (const type of ['subgrp', 'pg', 'og', 'cluster-pg']) {
      Validations.of(this).acknowledge({ id: `AwsSolutions-IAM5[${arn(type, '*')}]`, reason: reasons['*'] });
    }
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[${arn('db', '*')}]`,
      reason: "the cluster was given without its instance identifiers, so describing production's writer (read-only) cannot be narrowed further",
    });
  }
}

interface Settings {
  readonly kind: 'instance' | 'cluster';
  readonly databaseId: string;
  readonly migrationsDir: string;
  readonly verifyDir?: string;
  readonly quiesce: readonly string[];
  readonly strategy: 'in-place' | 'swap';
  readonly schedule: scheduler.ScheduleExpression;
  readonly history: HistoryLocation;
  readonly namePrefix: string;
}

/** Checks the props; every message names the prop and the bad value. */
function validate(props: SafeUpgradeProps, stackName: string): Settings {
  const database = props.database as Partial<rds.IDatabaseInstance & rds.IDatabaseCluster>;
  const found =
    database.clusterIdentifier !== undefined
      ? { kind: 'cluster' as const, databaseId: database.clusterIdentifier }
      : database.instanceIdentifier !== undefined
        ? { kind: 'instance' as const, databaseId: database.instanceIdentifier }
        : undefined;
  if (!found) {
    // From JavaScript it may be anything at all.
    const given: unknown = props.database;
    const shown = (given as { constructor?: { name?: unknown } } | null | undefined)?.constructor?.name ?? given;
    throw new Error(`SafeUpgrade: database must be an rds.IDatabaseInstance or rds.IDatabaseCluster, got ${String(shown)}`);
  }
  const isDir = (dir: string) => existsSync(dir) && statSync(dir).isDirectory();
  if (!props.migrationsDir || !isDir(props.migrationsDir)) throw new Error(`SafeUpgrade: migrationsDir "${props.migrationsDir}" is not a folder`);
  if (props.verifyDir !== undefined && !isDir(props.verifyDir)) throw new Error(`SafeUpgrade: verifyDir "${props.verifyDir}" is not a folder`);
  // Checked as whatever it is: a JavaScript caller may give any value.
  const strategy: unknown = props.strategy ?? 'in-place';
  if (strategy !== 'in-place' && strategy !== 'swap') throw new Error(`SafeUpgrade: strategy must be 'in-place' or 'swap', got "${String(strategy)}"`);
  for (const spec of props.quiesce ?? []) {
    if (!/^lambda:(arn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:[\w-]{1,64}|[\w-]{1,64})$/.test(spec)) {
      throw new Error(`SafeUpgrade: quiesce spec "${spec}" is not lambda:FUNCTION_NAME or lambda:FUNCTION_ARN (only Lambda functions can be quiesced on AWS)`);
    }
  }
  if (props.securityGroups?.length === 0) {
    throw new Error('SafeUpgrade: securityGroups is an empty list; give at least one, or leave it out for a new one');
  }
  let schedule: scheduler.ScheduleExpression;
  const given = props.rehearsalSchedule ?? 'rate(1 day)';
  if (typeof given === 'string') {
    if (!/^(rate|cron|at)\(.+\)$/.test(given))
      throw new Error(`SafeUpgrade: rehearsalSchedule "${given}" is not a schedule expression such as rate(1 day) or cron(0 3 * * ? *)`);
    schedule = scheduler.ScheduleExpression.expression(given);
  } else {
    schedule = given;
  }
  const namePrefix = props.namePrefix ?? stackName;
  if (!Token.isUnresolved(namePrefix) && !/^[A-Za-z0-9_-]{1,70}$/.test(namePrefix)) {
    throw new Error(
      `SafeUpgrade: namePrefix "${namePrefix}" must be 1 to 70 letters, digits, - or _ (state machine names are <prefix>-rehearsal, at most 80 characters)`,
    );
  }
  const history = props.history ?? DEFAULT_HISTORY;
  try {
    checkIdentifierOption(history.schema, 'history.schema');
    checkIdentifierOption(history.table, 'history.table');
  } catch (error) {
    throw new Error(`SafeUpgrade: ${(error as Error).message}`, { cause: error });
  }
  const verifyDir = props.verifyDir ?? defaultVerifyDir(props.migrationsDir);
  return {
    kind: found.kind,
    databaseId: found.databaseId,
    migrationsDir: props.migrationsDir,
    ...(verifyDir ? { verifyDir } : {}),
    quiesce: props.quiesce ?? [],
    strategy,
    schedule,
    history,
    namePrefix,
  };
}

/** `lambda:orders-api` → the function's ARN in this stack's account and region; an ARN stays as it is. */
function functionArnOf(stack: Stack, spec: string): string {
  const target = spec.slice('lambda:'.length);
  return target.startsWith('arn:')
    ? target
    : stack.formatArn({ service: 'lambda', resource: 'function', resourceName: target, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
