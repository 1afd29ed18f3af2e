import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import type { StepName } from '../src/steps/registry.ts';
import { stepTimeoutSeconds } from '../src/steps/step-timeouts.ts';
import type { StagedMigrations } from './migrations-asset.ts';
import { esbuildTarget, stepCode } from './step-bundles.ts';

/**
 * The newest Node.js runtime of the installed aws-cdk-lib that Lambda runs (NODEJS_LATEST is not
 * used on purpose: a runtime that changes under a deployed function is not what a migration tool wants).
 */
export const STEP_RUNTIME = lambda.Runtime.NODEJS_24_X;

export interface StepLambdaProps {
  readonly step: StepName;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  readonly environment: Readonly<Record<string, string>>;
  readonly staged: StagedMigrations;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * One step as a Lambda: the handler in lambdas/ bundled by esbuild (minified ESM, the AWS SDK inside
 * so its version is the one tested), on arm64 and the newest Node.js runtime, in the database's VPC,
 * with X-Ray tracing, its own log group and its own role. The role starts empty (no managed
 * policies): SafeUpgrade adds what the step's ports need.
 *
 * The steps that plan or apply migrations get the migrations folder (with `.ts` migrations compiled)
 * and the SQL parser's WebAssembly file next to the handler; the verify step gets the verify checks.
 * The other steps bundle a stand-in for the parser instead: its loader reads the 1.7 MB file at
 * import time, which would cost every step's cold start.
 *
 * The handlers of an app are bundled together, by one esbuild build per group (see
 * cdk/step-bundles.ts), each still into its own file with only what its step imports.
 *
 * @example
 * ```ts
 * const fn = new StepLambda(this, 'Finish', { step: 'finish', vpc, securityGroups: [sg], environment, staged }).function;
 * ```
 */
export class StepLambda extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: StepLambdaProps) {
    super(scope, id);
    const needs = STEP_NEEDS[props.step];
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `safeshift ${props.step} step`,
    });
    this.logGroup.grantWrite(this.role);
    // What AWSLambdaVPCAccessExecutionRole grants, written out: the function's network interfaces.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "Lambda's VPC network interface actions (ec2:CreateNetworkInterface, DescribeNetworkInterfaces, …) " +
        "and X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.",
    });

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      // Given its code, NodejsFunction does not bundle the entry itself (one esbuild process per function).
      code: stepCode(this, props.step, props.staged, esbuildTarget(STEP_RUNTIME)),
      handler: 'index.handler',
      runtime: STEP_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: needs.migrations ? 1024 : 512,
      timeout: Duration.seconds(stepTimeoutSeconds(props.step)),
      description: `safeshift ${props.step} step`,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      vpc: props.vpc,
      ...(props.vpcSubnets ? { vpcSubnets: props.vpcSubnets } : {}),
      securityGroups: [...props.securityGroups],
      environment: {
        ...props.environment,
        // Lambda's Node.js runtimes keep the Amazon RDS certificate authorities here but do not load them by default.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
    });
  }
}
