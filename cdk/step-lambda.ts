import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BundleFolders } from '../lambdas/environment.ts';
import { STEP_NEEDS, handlerFileOf } from '../lambdas/step-needs.ts';
import type { StepName } from '../src/steps/registry.ts';
import { stepTimeoutSeconds } from '../src/steps/step-timeouts.ts';
import { ESM_REQUIRE_BANNER, shellQuote, sqlParserWasm, type StagedMigrations } from './migrations-asset.ts';

/** The folder that holds lambdas/, src/ and package-lock.json. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: ['*'],
    }));
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'Lambda\'s VPC network interface actions (ec2:CreateNetworkInterface, DescribeNetworkInterfaces, …) and X-Ray\'s PutTraceSegments/PutTelemetryRecords have no resource-level permissions.',
    });

    const lockFile = path.join(PACKAGE_ROOT, 'package-lock.json');
    // The hooks copy from host paths, so they expect local bundling: esbuild (a dev dependency) is
    // installed, and CDK only falls back to Docker when it is not.
    const { staged } = props;
    const copies: string[] = [];
    if (needs.migrations) {
      copies.push(`cp -R ${shellQuote(path.join(staged.dir, BundleFolders.migrations))} __OUT__/${BundleFolders.migrations}`);
      copies.push(`cp ${shellQuote(sqlParserWasm())} __OUT__/`);
    }
    if (needs.verify) copies.push(`cp -R ${shellQuote(path.join(staged.dir, BundleFolders.verify))} __OUT__/${BundleFolders.verify}`);

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(PACKAGE_ROOT, 'lambdas', handlerFileOf(props.step)),
      handler: 'handler',
      ...(existsSync(lockFile) ? { projectRoot: PACKAGE_ROOT, depsLockFilePath: lockFile } : {}),
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
      bundling: {
        format: nodejs.OutputFormat.ESM,
        minify: true,
        sourceMap: false,
        bundleAwsSDK: true,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        ...(needs.migrations ? {} : { esbuildArgs: { '--alias': `libpg-query=${path.join(PACKAGE_ROOT, 'lambdas', 'no-sql-parser.ts')}` } }),
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) => copies.map((c) => c.replaceAll('__OUT__', shellQuote(output))),
        },
      },
    });
  }
}
