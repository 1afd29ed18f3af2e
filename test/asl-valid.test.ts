import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { describe, expect, it } from 'vitest';
import { SafeUpgrade } from '../cdk/safe-upgrade.ts';
import { WorkflowMachine } from '../cdk/workflow-machine.ts';
import { STEPS, type StepName } from '../src/steps/registry.ts';
import { stepTimeoutSeconds, TASK_TIMEOUT_MARGIN_SECONDS } from '../src/steps/step-timeouts.ts';
import { WORKFLOWS } from '../src/steps/workflows.ts';
import { defined } from './support/defined.ts';

/**
 * The committed state machines: what src/steps/workflows.ts generates, valid for AWS, and every
 * `${…}` in them bound to a function the SafeUpgrade construct creates.
 */
/** asl-validator ships no types; this is the call it documents. */
const aslValidator = createRequire(import.meta.url)('asl-validator') as (
  definition: unknown,
  options?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errorsText: (separator?: string) => string };

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'state-machines');
const FILES = Object.keys(WORKFLOWS) as (keyof typeof WORKFLOWS)[];
const read = (file: string) => readFileSync(path.join(DIR, file), 'utf8');
const placeholders = (text: string) => [...new Set([...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => defined(m[1], 'the placeholder name')))].sort();

describe('state-machines/*.asl.json', () => {
  it.each(FILES)('%s is what src/steps/workflows.ts generates (npx tsx scripts/generate-asl.ts writes it)', (file) => {
    expect(JSON.parse(read(file))).toEqual(JSON.parse(JSON.stringify(WORKFLOWS[file]())));
  });

  it.each(FILES)('%s is valid Amazon States Language, with its Resources as real Lambda ARNs', (file) => {
    // Substituted as CloudFormation would, so the ARN check applies to what AWS receives.
    const text = read(file).replace(/\$\{(\w+)FunctionArn\}/g, (_m, step: string) => `arn:aws:lambda:eu-west-1:123456789012:function:safeshift-${step}`);
    const { isValid, errorsText } = aslValidator(JSON.parse(text), { checkArn: true, checkPaths: true });
    expect(isValid, errorsText('\n')).toBe(true);
  });

  it.each(FILES)('%s only substitutes <step>FunctionArn for steps that exist', (file) => {
    for (const name of placeholders(read(file))) {
      expect(name).toMatch(/^\w+FunctionArn$/);
      expect(Object.keys(STEPS)).toContain(name.replace(/FunctionArn$/, ''));
    }
  });

  it.each(FILES)("%s gives every Task an explicit timeout past its Lambda's, never the 60 s ASL default", (file) => {
    const states = (JSON.parse(read(file)) as { States: Record<string, { Type: string; Resource?: string; TimeoutSeconds?: number }> }).States;
    for (const [name, state] of Object.entries(states)) {
      if (state.Type !== 'Task') continue;
      const step = /^\$\{(\w+)FunctionArn\}$/.exec(String(state.Resource))?.[1] as StepName;
      expect(state.TimeoutSeconds, name).toBe(stepTimeoutSeconds(step) + TASK_TIMEOUT_MARGIN_SECONDS);
    }
  });

  it('every substitution resolves to a function the SafeUpgrade construct creates', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Shop');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    const database = rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Db', {
      instanceIdentifier: 'shop',
      instanceEndpointAddress: 'shop.example',
      port: 5432,
      securityGroups: [],
    });
    const credentials = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Secret', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-AbCdEf');
    new SafeUpgrade(stack, 'SafeUpgrade', { database, credentials, vpc, migrationsDir: path.join(DIR, '..', 'examples', 'migrations') });
    const template = Template.fromStack(stack);
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, { Properties: { Description?: string } }>;
    const machines = template.findResources('AWS::StepFunctions::StateMachine') as Record<
      string,
      { Properties: { StateMachineName?: string; DefinitionSubstitutions?: Record<string, { 'Fn::GetAtt': [string, string] }> } }
    >;
    for (const file of FILES) {
      const workflow = file.replace('.asl.json', '');
      const machine = defined(
        Object.values(machines).find((m) => m.Properties.StateMachineName === `Shop-${workflow}`),
        `the Shop-${workflow} state machine`,
      );
      const subs = defined(machine.Properties.DefinitionSubstitutions, `the DefinitionSubstitutions of Shop-${workflow}`);
      expect(Object.keys(subs).sort()).toEqual(placeholders(read(file)));
      for (const [name, value] of Object.entries(subs)) {
        expect(value['Fn::GetAtt'][1]).toBe('Arn');
        expect(functions[value['Fn::GetAtt'][0]]?.Properties.Description, name).toBe(`safeshift ${name.replace(/FunctionArn$/, '')} step`);
      }
    }
  });

  it('a definition that calls a step without a function fails the synth, naming it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safeshift-asl-'));
    const file = path.join(dir, 'broken.asl.json');
    writeFileSync(file, read('upgrade.asl.json').replace('${preflightFunctionArn}', '${launchRocketsFunctionArn}'));
    expect(() => WorkflowMachine.stepsOf(file, STEPS)).toThrow(/broken\.asl\.json calls step "launchRockets"/);
    writeFileSync(file, read('upgrade.asl.json').replace('${preflightFunctionArn}', '${SomethingElse}'));
    expect(() => WorkflowMachine.stepsOf(file, STEPS)).toThrow(/\$\{SomethingElse\}, which is not/);
  });
});
