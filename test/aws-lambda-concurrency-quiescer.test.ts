import {
  DeleteFunctionConcurrencyCommand,
  GetFunctionConcurrencyCommand,
  LambdaClient,
  PutFunctionConcurrencyCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { LambdaConcurrencyQuiescer } from '../src/adapters/aws/lambda-concurrency-quiescer.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { awsError, rejection } from './support/aws-errors.ts';
import { thrown } from './support/defined.ts';

/** What a promise rejected with; fails the test when it resolves. */
const lambda = mockClient(LambdaClient);
beforeEach(() => lambda.reset());

const waits: number[] = [];
const quiescer = (spec = 'lambda:orders-api') => {
  waits.length = 0;
  return new LambdaConcurrencyQuiescer(spec, {
    client: new LambdaClient({ region: 'eu-west-1' }),
    retry: {
      attempts: 4,
      baseMs: 100,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      random: () => 0.999,
    },
  });
};

const sent = () =>
  lambda.calls().map((c) => {
    const input = c.args[0].input as { ReservedConcurrentExecutions?: number };
    const name = c.args[0].constructor.name.replace('Command', '');
    return `${name}${input.ReservedConcurrentExecutions === undefined ? '' : ` ${input.ReservedConcurrentExecutions}`}`;
  });

describe('LambdaConcurrencyQuiescer', () => {
  it('puts back "none" exactly: capture null, quiesce to 0, resume deletes the reservation', async () => {
    lambda.on(GetFunctionConcurrencyCommand).resolves({});
    lambda.on(PutFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: 0 });
    lambda.on(DeleteFunctionConcurrencyCommand).resolves({});
    const q = quiescer();
    const prior = await q.capture();
    expect(prior).toBeNull();
    await q.quiesce();
    await q.resume(prior);
    expect(sent()).toEqual(['GetFunctionConcurrency', 'PutFunctionConcurrency 0', 'DeleteFunctionConcurrency']);
    expect(lambda.commandCalls(DeleteFunctionConcurrencyCommand)[0]?.args[0].input).toEqual({ FunctionName: 'orders-api' });
  });

  it.each([25, 0])('puts back a reserved concurrency of %i exactly', async (n) => {
    lambda.on(GetFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: n });
    lambda.on(PutFunctionConcurrencyCommand).resolves({});
    const q = quiescer();
    const prior = await q.capture();
    expect(prior).toBe(n);
    await q.quiesce();
    await q.resume(prior);
    expect(sent()).toEqual(['GetFunctionConcurrency', 'PutFunctionConcurrency 0', `PutFunctionConcurrency ${n}`]);
    expect(lambda.commandCalls(PutFunctionConcurrencyCommand)[1]?.args[0].input).toEqual({ FunctionName: 'orders-api', ReservedConcurrentExecutions: n });
    expect(lambda.commandCalls(DeleteFunctionConcurrencyCommand)).toHaveLength(0);
  });

  it('takes the function name or ARN after the first colon only', () => {
    const q = quiescer('lambda:arn:aws:lambda:eu-west-1:123456789012:function:orders-api');
    expect(q.id).toBe('lambda:arn:aws:lambda:eu-west-1:123456789012:function:orders-api');
    expect(q.functionName).toBe('arn:aws:lambda:eu-west-1:123456789012:function:orders-api');
    expect(thrown(() => quiescer('lambda:'), "quiescer('lambda:')")).toMatchObject({ code: 'BAD_OPTION' });
    expect(thrown(() => quiescer('orders-api'), "quiescer('orders-api')")).toMatchObject({ code: 'BAD_OPTION' });
  });

  it('retries TooManyRequestsException with growing waits', async () => {
    lambda
      .on(PutFunctionConcurrencyCommand)
      .rejectsOnce(awsError('TooManyRequestsException', 429))
      .rejectsOnce(awsError('TooManyRequestsException', 429))
      .resolves({});
    await quiescer().quiesce();
    expect(lambda.commandCalls(PutFunctionConcurrencyCommand)).toHaveLength(3);
    expect(waits).toEqual([100, 200]);
  });

  it('gives up after the last attempt with QUIESCE_FAILED', async () => {
    lambda.on(PutFunctionConcurrencyCommand).rejects(awsError('TooManyRequestsException', 429));
    const error = await rejection(quiescer().quiesce());
    expect(error).toMatchObject({ code: 'QUIESCE_FAILED', outcome: 'needs-operator' });
    expect(lambda.commandCalls(PutFunctionConcurrencyCommand)).toHaveLength(4);
  });

  it('does not retry other errors', async () => {
    lambda.on(PutFunctionConcurrencyCommand).rejects(awsError('InvalidParameterValueException'));
    await expect(quiescer().quiesce()).rejects.toMatchObject({ code: 'QUIESCE_FAILED' });
    expect(lambda.commandCalls(PutFunctionConcurrencyCommand)).toHaveLength(1);
  });

  it('says clearly when the function does not exist (refused at capture, nothing changed)', async () => {
    lambda.on(GetFunctionConcurrencyCommand).rejects(new ResourceNotFoundException({ message: 'Function not found: arn:…', $metadata: {} }));
    const error = await rejection(quiescer().capture());
    expect(error).toBeInstanceOf(SafeshiftError);
    expect(error).toMatchObject({ code: 'QUIESCE_FAILED', outcome: 'refused' });
    expect((error as Error).message).toMatch(/orders-api does not exist/);
  });

  it('tells the operator how to resume by hand when resume fails', async () => {
    lambda.on(DeleteFunctionConcurrencyCommand).rejects(awsError('ResourceNotFoundException', 404));
    lambda.on(PutFunctionConcurrencyCommand).rejects(awsError('ServiceException', 500));
    const none = await rejection(quiescer().resume(null));
    expect(none).toMatchObject({ code: 'QUIESCE_FAILED', outcome: 'needs-operator' });
    expect(none.message).toMatch(/aws lambda delete-function-concurrency --function-name orders-api/);
    const ten = await rejection(quiescer().resume(10));
    expect(ten.message).toMatch(/--reserved-concurrent-executions 10/);
  });

  it('refuses a recorded prior state that is not a reserved concurrency, without calling Lambda', async () => {
    for (const prior of [-1, 1.5, 'none', { n: 1 }] as const) {
      await expect(quiescer().resume(prior)).rejects.toMatchObject({ code: 'QUIESCE_FAILED' });
    }
    expect(lambda.calls()).toHaveLength(0);
  });
});
