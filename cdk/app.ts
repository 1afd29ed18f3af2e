// The example CDK app that `npx cdk synth` / `npx cdk deploy` run (cdk.json). Context:
//   -c stackName=NAME  (default SafeshiftExample)   -c strategy=swap   -c quiesce=lambda:orders-api,lambda:billing
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ExampleStack } from './example-stack.ts';

const app = new App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value ? value : undefined;
};
const strategy = context('strategy');
const quiesce = context('quiesce');
if (strategy !== undefined && strategy !== 'in-place' && strategy !== 'swap') throw new Error(`context strategy must be in-place or swap, got "${strategy}"`);
new ExampleStack(app, context('stackName') ?? 'SafeshiftExample', {
  description: 'safeshift example: an RDS for PostgreSQL database upgraded by the SafeUpgrade construct',
  ...(strategy ? { strategy } : {}),
  ...(quiesce ? { quiesce: quiesce.split(',') } : {}),
});
// Every AwsSolutions finding fails the synth unless it was acknowledged with a reason.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
