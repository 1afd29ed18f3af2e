import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { SafeUpgrade } from './safe-upgrade.ts';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples');

export interface ExampleStackProps extends StackProps {
  /** @default examples/migrations */
  readonly migrationsDir?: string;
  /** Lambda functions to quiesce during an upgrade (`lambda:NAME`). @default none */
  readonly quiesce?: readonly string[];
  /** @default 'in-place' */
  readonly strategy?: 'in-place' | 'swap';
}

/**
 * A complete example: a VPC with no internet access (the AWS APIs the steps call are reached through
 * VPC endpoints), an encrypted RDS for PostgreSQL instance with its generated secret, an alarm topic,
 * and SafeUpgrade with the example shop's migrations. Synthesises offline: nothing is looked up.
 *
 * @example
 * ```ts
 * new ExampleStack(new App(), 'SafeshiftExample');
 * ```
 */
export class ExampleStack extends Stack {
  readonly safeUpgrade: SafeUpgrade;

  constructor(scope: Construct, id: string, props: ExampleStackProps = {}) {
    super(scope, id, props);
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      flowLogs: { rejected: { trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
    // Closed endpoints (no rule for the whole VPC): only the step Lambdas are let in, below.
    const endpoints = (
      [
        ['Rds', ec2.InterfaceVpcEndpointAwsService.RDS],
        ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
        ['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA],
      ] as const
    ).map(([name, service]) => vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false }));

    const key = new kms.Key(this, 'DatabaseKey', {
      enableKeyRotation: true,
      description: 'safeshift example database storage',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const database = new rds.DatabaseInstance(this, 'Database', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      credentials: rds.Credentials.fromGeneratedSecret('shop_admin'),
      databaseName: 'shop',
      storageEncrypted: true,
      storageEncryptionKey: key,
      multiAz: true,
      deletionProtection: true,
      backupRetention: Duration.days(7),
      iamAuthentication: true,
      cloudwatchLogsExports: ['postgresql'],
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    Validations.of(database).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason: "the default port is kept: only the safeshift steps' security group may reach it, which is the control that matters",
    });
    // The finding is on the generated secret, a child of the instance (`database.secret` is its attachment).
    Validations.of(database).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'rotation is left to the owner of the example; SecretsConnector re-reads the secret when the server rejects a rotated password',
    });

    // Credentials.fromGeneratedSecret gives the instance a secret.
    const credentials = database.secret;
    if (!credentials) throw new Error('the example database has no generated secret; its credentials must come from Credentials.fromGeneratedSecret');

    const topic = new sns.Topic(this, 'Alarms', { displayName: 'safeshift alarms', enforceSSL: true });
    this.safeUpgrade = new SafeUpgrade(this, 'SafeUpgrade', {
      database,
      credentials,
      vpc,
      databaseKey: key,
      migrationsDir: props.migrationsDir ?? path.join(EXAMPLES, 'migrations'),
      ...(props.quiesce ? { quiesce: props.quiesce } : {}),
      ...(props.strategy ? { strategy: props.strategy } : {}),
      alarmTopic: topic,
    });
    for (const endpoint of endpoints) {
      for (const sg of this.safeUpgrade.securityGroups) endpoint.connections.allowDefaultPortFrom(sg, 'safeshift step Lambdas');
    }
  }
}
