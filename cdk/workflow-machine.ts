import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface WorkflowMachineProps {
  /** The ASL file (JSONPath), whose Task Resources are `${<step>FunctionArn}` substitutions. */
  readonly definitionFile: string;
  /** The step functions by step name; every substitution the file uses must name one. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** @default a name CloudFormation generates */
  readonly stateMachineName?: string;
  /** Where the failed-executions alarm notifies. @default no notification */
  readonly alarmTopic?: sns.ITopic;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /**
   * How long one execution may run before Step Functions stops it. An upgrade waits for snapshots
   * and restores, which take hours on a large database.
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;
}

const SUBSTITUTION = /\$\{([^}]*)\}/g;
const STEP_ARN = /^(\w+)FunctionArn$/;

/**
 * One of safeshift's state machines, deployed from its ASL file unchanged: every
 * `${<step>FunctionArn}` is substituted with that step's function (a name without a function fails
 * the synth, naming the file and the name), the role may invoke exactly those functions, every
 * event is logged to CloudWatch Logs with the execution data, X-Ray tracing is on, and an alarm
 * goes off when an execution fails, times out or is aborted.
 *
 * @example
 * ```ts
 * const machine = new WorkflowMachine(this, 'Upgrade', { definitionFile: 'state-machines/upgrade.asl.json', functions }).stateMachine;
 * ```
 */
export class WorkflowMachine extends Construct {
  /**
   * The step names a definition's substitutions call, checked: a substitution that is not
   * `${<step>FunctionArn}`, or names a step without a function, throws.
   *
   * @example
   * ```ts
   * WorkflowMachine.stepsOf('state-machines/restore.asl.json', functions) // ['restorePreflight', 'quiesce', …]
   * ```
   */
  static stepsOf(definitionFile: string, functions: Readonly<Record<string, unknown>>): string[] {
    const text = readFileSync(definitionFile, 'utf8');
    const steps = new Set<string>();
    for (const [, name] of text.matchAll(SUBSTITUTION)) {
      const step = STEP_ARN.exec(name ?? '')?.[1];
      if (!step) throw new Error(`${path.basename(definitionFile)} uses the substitution \${${name}}, which is not \${<step>FunctionArn}`);
      if (!(step in functions)) {
        throw new Error(
          `${path.basename(definitionFile)} calls step "${step}" (\${${name}}), but SafeUpgrade has no function for it; add it to STEPS and STEP_NEEDS`,
        );
      }
      steps.add(step);
    }
    return [...steps];
  }

  readonly stateMachine: sfn.StateMachine;
  readonly alarm: cloudwatch.Alarm;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: WorkflowMachineProps) {
    super(scope, id);
    const steps = WorkflowMachine.stepsOf(props.definitionFile, props.functions);
    const used = steps.map((step) => {
      const fn = props.functions[step];
      // stepsOf has checked that every step the file calls has one.
      if (!fn) throw new Error(`${path.basename(props.definitionFile)} calls step "${step}", but no function for it was given`);
      return { step, fn };
    });
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      ...(props.stateMachineName ? { stateMachineName: props.stateMachineName } : {}),
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(props.definitionFile),
      definitionSubstitutions: Object.fromEntries(used.map(({ step, fn }) => [`${step}FunctionArn`, fn.functionArn])),
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
      timeout: props.timeout ?? Duration.hours(24),
    });
    // The Task Resources are the unqualified function ARNs, so these and nothing else (no `:*`).
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: used.map(({ fn }) => fn.functionArn) }));
    Validations.of(this.stateMachine).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions log delivery (logs:CreateLogDelivery, …) and X-Ray (xray:PutTraceSegments, …) ' +
        'have no resource-level permissions; CDK adds them for logging ALL events and tracing.',
    });

    const metric = (m: cloudwatch.Metric) => m.with({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) });
    this.alarm = new cloudwatch.Alarm(this, 'FailedExecutions', {
      alarmDescription:
        `A safeshift ${path.basename(props.definitionFile, '.asl.json')} run failed, ` +
        `timed out or was aborted. A refused or rolled-back run fails too: see \`safeshift runs\` for why.`,
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)',
        usingMetrics: {
          failed: metric(this.stateMachine.metricFailed()),
          timedOut: metric(this.stateMachine.metricTimedOut()),
          aborted: metric(this.stateMachine.metricAborted()),
        },
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) this.alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
  }
}
