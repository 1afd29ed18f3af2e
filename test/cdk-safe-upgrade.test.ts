import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ExampleStack } from '../cdk/example-stack.ts';
import { SafeUpgrade, type SafeUpgradeProps } from '../cdk/safe-upgrade.ts';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import { migrationsBundle } from '../src/adapters/aws/sfn-migrations-checksum.ts';
import { STEPS, type StepName } from '../src/steps/registry.ts';
import { defined } from './support/defined.ts';

/**
 * The SafeUpgrade construct, by its synthesized template: chosen properties, never logical IDs.
 * Bundling is skipped (`aws:cdk:bundling-stacks: []`); test/lambda-bundles.test.ts bundles for real.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIGRATIONS = path.join(ROOT, 'examples', 'migrations');
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-admin-AbCdEf';

type Kind = 'instance' | 'cluster';

function synth(props: Partial<SafeUpgradeProps> = {}, kind: Kind = 'instance') {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Shop', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    natGateways: 0,
    subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    flowLogs: { all: {} },
  });
  const dbSg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'DbSg', 'sg-0123456789abcdef0');
  const database =
    kind === 'instance'
      ? rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Db', {
          instanceIdentifier: 'shop',
          instanceEndpointAddress: 'shop.abc.eu-west-1.rds.amazonaws.com',
          port: 5432,
          securityGroups: [dbSg],
        })
      : rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Db', {
          clusterIdentifier: 'shop',
          instanceIdentifiers: ['shop-writer'],
          port: 5432,
          securityGroups: [dbSg],
        });
  const credentials = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Secret', SECRET_ARN);
  const construct = new SafeUpgrade(stack, 'SafeUpgrade', { database, credentials, vpc, migrationsDir: MIGRATIONS, ...props });
  return { app, stack, construct, template: Template.fromStack(stack) };
}

/** An ARN as CloudFormation would render it, with the partition filled in, for reading assertions. */
function flat(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    const join = v['Fn::Join'];
    if (Array.isArray(join)) return (join[1] as unknown[]).map(flat).join(join[0] as string);
    if (v.Ref === 'AWS::Partition') return 'aws';
  }
  return JSON.stringify(value);
}

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** The properties of the resources the tests read; Template gives every resource as `any`. */
interface GetAtt {
  'Fn::GetAtt': [string, string];
}
interface FunctionProps {
  Description?: string;
  Role: GetAtt;
  VpcConfig: { SubnetIds: unknown[]; SecurityGroupIds: unknown[] };
  Environment: { Variables: Record<string, unknown> };
  Timeout?: number;
}
interface PolicyProps {
  Roles: { Ref: string }[];
  PolicyDocument: { Statement: Statement[] };
}
interface MachineProps {
  StateMachineName: string;
  RoleArn: GetAtt;
  DefinitionSubstitutions: Record<string, GetAtt>;
}

/** What Template.findResources returns (resources by logical ID), with a type for the properties read. */
type Resources<P> = Record<string, { Properties: P; DeletionPolicy?: string }>;

/** The statements of each step's role, by step (found through the function's Role). */
function statementsByStep(template: Template): Record<string, Statement[]> {
  const functions = template.findResources('AWS::Lambda::Function') as Resources<FunctionProps>;
  const policies = template.findResources('AWS::IAM::Policy') as Resources<PolicyProps>;
  const out: Record<string, Statement[]> = {};
  for (const fn of Object.values(functions)) {
    const step = /^safeshift (\w+) step$/.exec(String(fn.Properties.Description))?.[1];
    if (!step) continue;
    const role = fn.Properties.Role['Fn::GetAtt'][0];
    out[step] = Object.values(policies)
      .filter((p) => p.Properties.Roles.some((r) => r.Ref === role))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
  }
  return out;
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourceList = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
const resourcesOf = (s: Statement) => resourceList(s).map(flat);
const MUTATING_RDS = /^rds:(Create|Restore|Modify|Delete|AddTags|RemoveTags)/;

describe('SafeUpgrade: state machines', () => {
  const { template } = synth({ alarmTopic: undefined });

  it('deploys the three ASL files with every Task substituted by a step function', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine') as Resources<MachineProps>;
    expect(
      Object.values(machines)
        .map((m) => m.Properties.StateMachineName)
        .sort(),
    ).toEqual(['Shop-rehearsal', 'Shop-restore', 'Shop-upgrade']);
    const functions = template.findResources('AWS::Lambda::Function') as Resources<FunctionProps>;
    for (const machine of Object.values(machines)) {
      const subs = machine.Properties.DefinitionSubstitutions;
      expect(Object.keys(subs).length).toBeGreaterThan(5);
      for (const [name, value] of Object.entries(subs)) {
        expect(name).toMatch(/^\w+FunctionArn$/);
        const fn = functions[value['Fn::GetAtt'][0]];
        expect(fn?.Properties.Description).toBe(`safeshift ${name.replace(/FunctionArn$/, '')} step`);
      }
    }
  });

  it('logs ALL events with execution data and traces with X-Ray', () => {
    template.allResourcesProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true, Destinations: Match.anyValue() }),
      TracingConfiguration: { Enabled: true },
    });
  });

  it('lets each machine invoke exactly its functions, by their unqualified ARNs', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine') as Resources<MachineProps>;
    const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources<PolicyProps>);
    for (const machine of Object.values(machines)) {
      const role = machine.Properties.RoleArn['Fn::GetAtt'][0];
      const invoke = policies
        .filter((p) => p.Properties.Roles.some((r) => r.Ref === role))
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
      const invoked = invoke
        .flatMap(resourceList)
        .map((r) => JSON.stringify(r))
        .sort();
      const substituted = Object.values(machine.Properties.DefinitionSubstitutions)
        .map((r) => JSON.stringify(r))
        .sort();
      expect(invoked).toEqual(substituted);
    }
  });

  it('schedules the rehearsal machine, daily by default, with a fresh run id per invocation', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'Shop-rehearsal' } });
    const [rehearsalId] = Object.keys(machines);
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 day)',
      Target: Match.objectLike({ Arn: { Ref: rehearsalId }, RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }) }),
    });
    const schedules = template.findResources('AWS::Scheduler::Schedule') as Resources<{ Target: { Input: unknown } }>;
    const schedule = defined(Object.values(schedules)[0], 'the schedule');
    const input = JSON.parse(flat(schedule.Properties.Target.Input)) as { run: Record<string, unknown> };
    expect(input.run).toMatchObject({ runId: '<aws.scheduler.execution-id>', kind: 'rehearsal', database: 'shop', rehearsal: true });
  });

  it('alarms on failed executions of each machine', () => {
    interface AlarmProps {
      Metrics: { MetricStat?: { Metric: { MetricName: string } } }[];
    }
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources<AlarmProps>);
    expect(alarms).toHaveLength(3);
    for (const alarm of alarms) {
      const names = alarm.Properties.Metrics.map((m) => m.MetricStat?.Metric.MetricName).filter(Boolean);
      expect(names).toContain('ExecutionsFailed');
    }
  });

  it('sends the alarms to the topic when one is given', () => {
    const app = synth({ alarmTopic: sns.Topic.fromTopicArn(new Stack(new App(), 'T'), 'Topic', 'arn:aws:sns:eu-west-1:123456789012:ops') });
    app.template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:ops'] });
  });

  it('tags each machine with what the pipeline trigger needs and outputs the ARNs and checksum', () => {
    const { checksum } = migrationsBundle(MIGRATIONS, path.join(ROOT, 'examples', 'verify'));
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'Shop-upgrade',
      Tags: Match.arrayWith([
        { Key: 'safeshift:database', Value: 'shop' },
        { Key: 'safeshift:migrations-checksum', Value: checksum },
        { Key: 'safeshift:workflow', Value: 'upgrade' },
      ]),
    });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const byName = (name: string) => Object.entries(outputs).find(([k]) => k.includes(name))?.[1].Value;
    expect(byName('MigrationsChecksum')).toBe(checksum);
    expect(byName('DatabaseIdentifier')).toBe('shop');
    expect(byName('UpgradeStateMachineArn')).toBeDefined();
  });
});

describe('SafeUpgrade: ledger table', () => {
  const { template } = synth();

  it('has the key schema DynamoDbLedger reads, point-in-time recovery, KMS encryption and on-demand capacity', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      // SSEEnabled without a key: KMS with the AWS managed key (aws/dynamodb), not the AWS owned one.
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'byDatabase',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        }),
        Match.objectLike({
          IndexName: 'byType',
          KeySchema: [
            { AttributeName: 'gsi2pk', KeyType: 'HASH' },
            { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        }),
      ],
    });
    const tables = template.findResources('AWS::DynamoDB::Table') as Resources<{ TimeToLiveSpecification?: unknown }>;
    const table = defined(Object.values(tables)[0], 'the ledger table');
    expect(table.Properties.TimeToLiveSpecification).toBeUndefined();
    expect(table.DeletionPolicy).toBe('Retain');
  });
});

describe('SafeUpgrade: step functions', () => {
  const { template } = synth({ quiesce: ['lambda:orders-api'] });

  it('makes one function per step: newest Node.js runtime, arm64, in the VPC and a security group, traced', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function') as Resources<FunctionProps>);
    expect(functions.map((f) => f.Properties.Description).sort()).toEqual(
      Object.keys(STEPS)
        .map((s) => `safeshift ${s} step`)
        .sort(),
    );
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], TracingConfig: { Mode: 'Active' }, Handler: 'index.handler' });
      expect(fn.Properties.VpcConfig.SubnetIds.length).toBeGreaterThan(0);
      expect(fn.Properties.VpcConfig.SecurityGroupIds).toHaveLength(1);
    }
  });

  it('lets the step security group in on the database port', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { GroupId: 'sg-0123456789abcdef0', FromPort: 5432, ToPort: 5432, IpProtocol: 'tcp' });
  });

  it('configures the steps by environment: ARNs and names, never a secret value', () => {
    const { checksum } = migrationsBundle(MIGRATIONS, path.join(ROOT, 'examples', 'verify'));
    const migrate = template.findResources('AWS::Lambda::Function', { Properties: { Description: 'safeshift migrate step' } }) as Resources<FunctionProps>;
    const fn = defined(Object.values(migrate)[0], 'the migrate function');
    expect(fn.Properties.Environment.Variables).toMatchObject({
      SAFESHIFT_DB_SECRET_ARN: SECRET_ARN,
      SAFESHIFT_DB_KIND: 'instance',
      SAFESHIFT_DB_ID: 'shop',
      SAFESHIFT_QUIESCE: '["lambda:orders-api"]',
      SAFESHIFT_MIGRATIONS_CHECKSUM: checksum,
      NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
    });
    expect(JSON.stringify(fn.Properties.Environment)).not.toMatch(/password/i);
    expect(fn.Properties.Timeout).toBe(900);
  });
});

describe('SafeUpgrade: IAM is least privilege', () => {
  for (const kind of ['instance', 'cluster'] as const) {
    const { template } = synth({ quiesce: ['lambda:orders-api'] }, kind);
    const byStep = statementsByStep(template);
    const of = (step: StepName) => defined(byStep[step], `the statements of ${step}`);

    it(`${kind}: each role has the statements of its step's ports only`, () => {
      expect(Object.keys(byStep).sort()).toEqual(Object.keys(STEPS).sort());
      for (const [step, statements] of Object.entries(byStep)) {
        const ports = STEP_NEEDS[step as StepName].ports;
        const actions = statements.flatMap(actionsOf);
        expect(
          actions.some((a) => a.startsWith('dynamodb:')),
          `${step} dynamodb`,
        ).toBe(ports.includes('ledger'));
        expect(actions.includes('secretsmanager:GetSecretValue'), `${step} secret`).toBe(ports.includes('connector'));
        expect(
          actions.some((a) => MUTATING_RDS.test(a)),
          `${step} rds`,
        ).toBe(ports.includes('fleet'));
        expect(
          actions.some((a) => a.startsWith('lambda:')),
          `${step} lambda`,
        ).toBe(ports.includes('quiescers'));
      }
    });

    it(`${kind}: no mutating RDS action on a wildcard that is not safeshift's, and safeshift's only under its tags`, () => {
      const fleet = of('swap').filter((s) => actionsOf(s).some((a) => MUTATING_RDS.test(a)));
      for (const s of fleet) {
        for (const resource of resourcesOf(s)) {
          expect(resource, JSON.stringify(s)).not.toBe('*');
          if (resource.endsWith(':ss-*')) expect(s.Condition, `${actionsOf(s).join()} on ${resource}`).toBeDefined();
        }
      }
    });

    it(`${kind}: deleting is allowed only for safeshift's clones and retired databases of this database`, () => {
      const deletes = of('cleanup').filter((s) => actionsOf(s).some((a) => a.startsWith('rds:Delete')));
      const conditioned = deletes.filter((s) => s.Condition);
      for (const s of conditioned) {
        expect(resourcesOf(s).every((r) => /:(db|cluster|snapshot|cluster-snapshot):ss-\*$/.test(r))).toBe(true);
        const tags = { ...defined(s.Condition, 'the condition').StringEquals };
        if (actionsOf(s).some((a) => a.endsWith('Snapshot'))) {
          expect(tags).toEqual({ [kind === 'cluster' ? 'rds:cluster-snapshot-tag/safeshift:database' : 'rds:snapshot-tag/safeshift:database']: 'shop' });
        } else {
          expect(tags).toEqual({ 'aws:ResourceTag/safeshift:database': 'shop', 'aws:ResourceTag/safeshift:kind': ['clone', 'retired'] });
        }
      }
      const unconditioned = deletes.filter((s) => !s.Condition);
      // Only an Aurora cluster's own instances, which a swap leaves untagged in the retired cluster.
      expect(unconditioned.flatMap(resourcesOf)).toEqual(kind === 'cluster' ? ['arn:aws:rds:eu-west-1:123456789012:db:shop-writer'] : []);
    });

    it(`${kind}: snapshots and clones are created only with safeshift's tags for this database`, () => {
      const creates = of('startSnapshot')
        .concat(of('startClone'))
        .filter((s) => actionsOf(s).some((a) => /^rds:(CreateDB(Cluster)?Snapshot|Restore)/.test(a)));
      const onNew = creates.filter(
        (s) =>
          resourcesOf(s).some((r) => /:(db|cluster):ss-\*$/.test(r)) ||
          (actionsOf(s).some((a) => a.endsWith('Snapshot')) && resourcesOf(s).some((r) => r.endsWith(':ss-*') && !r.includes('snapshot-tag'))),
      );
      expect(onNew.length).toBeGreaterThan(0);
      const requestTagged = creates.filter((s) => s.Condition?.StringEquals?.['aws:RequestTag/safeshift:database'] === 'shop');
      expect(requestTagged.length).toBeGreaterThanOrEqual(2);
      for (const s of requestTagged)
        expect(s.Condition?.['ForAllValues:StringEquals']).toEqual({ 'aws:TagKeys': ['safeshift:run-id', 'safeshift:database', 'safeshift:kind'] });
      const fromSnapshot = creates.find(
        (s) =>
          s.Condition?.StringEquals?.[kind === 'cluster' ? 'rds:cluster-snapshot-tag/safeshift:database' : 'rds:snapshot-tag/safeshift:database'] === 'shop',
      );
      expect(fromSnapshot, "restores only from this database's snapshots").toBeDefined();
    });

    it(`${kind}: the secret, the ledger and the quiesced function are named exactly`, () => {
      const secret = defined(
        of('migrate').find((s) => actionsOf(s).includes('secretsmanager:GetSecretValue')),
        'the secret statement',
      );
      expect(resourcesOf(secret)).toEqual([SECRET_ARN]);
      const ledger = defined(
        of('finish').find((s) => actionsOf(s).includes('dynamodb:PutItem')),
        'the ledger statement',
      );
      expect(actionsOf(ledger).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
      expect(
        resourcesOf(ledger)
          .filter((r) => r.includes('/index/'))
          .map((r) => r.replace(/^.*\/index\//, '')),
      ).toEqual(['byDatabase', 'byType']);
      const quiesce = defined(
        of('quiesce').find((s) => actionsOf(s).includes('lambda:PutFunctionConcurrency')),
        'the quiesce statement',
      );
      expect(resourcesOf(quiesce)).toEqual(['arn:aws:lambda:eu-west-1:123456789012:function:orders-api']);
    });
  }
});

describe('SafeUpgrade: cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged finding for the construct (instance and cluster)', () => {
    for (const kind of ['instance', 'cluster'] as const) {
      const { app } = synth({ quiesce: ['lambda:orders-api'] }, kind);
      const report = new AwsSolutionsChecks().validateScope(app);
      expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    }
  });

  it('reports no unacknowledged finding for the example app', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    new ExampleStack(app, 'Example');
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});

describe('SafeUpgrade: props are validated, naming the bad value', () => {
  const cases: [string, Partial<SafeUpgradeProps>, RegExp][] = [
    ['strategy', { strategy: 'blue-green' as never }, /strategy .*"blue-green"/],
    ['migrationsDir', { migrationsDir: '/nowhere/migrations' }, /migrationsDir "\/nowhere\/migrations" is not a folder/],
    ['verifyDir', { verifyDir: '/nowhere/verify' }, /verifyDir "\/nowhere\/verify"/],
    ['quiesce', { quiesce: ['db-role:app'] }, /quiesce spec "db-role:app"/],
    ['rehearsalSchedule', { rehearsalSchedule: 'every day' }, /rehearsalSchedule "every day"/],
    ['securityGroups', { securityGroups: [] }, /securityGroups is an empty list/],
    ['namePrefix', { namePrefix: 'has spaces' }, /namePrefix "has spaces"/],
    ['history', { history: { schema: '', table: 't' } }, /history\.schema must not be empty/],
  ];
  for (const [prop, props, message] of cases) {
    it(prop, () => {
      expect(() => synth(props)).toThrow(message);
    });
  }

  it('database must be an RDS instance or cluster', () => {
    expect(() => synth({ database: { connections: {} } as never })).toThrow(/database must be an rds\.IDatabaseInstance or rds\.IDatabaseCluster/);
  });
});
