import { GetFunctionConcurrencyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { AwsQuiescerFactory } from '../src/adapters/aws/quiescers.ts';
import { LambdaConcurrencyQuiescer } from '../src/adapters/aws/lambda-concurrency-quiescer.ts';
import type { Quiescer, QuiescerFactory } from '../src/ports.ts';
import { thrown } from './support/defined.ts';

describe('AwsQuiescerFactory', () => {
  it('makes a Lambda concurrency quiescer for lambda: specs, using the given client', async () => {
    const lambda = mockClient(LambdaClient);
    lambda.on(GetFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: 3 });
    const q = new AwsQuiescerFactory({ lambda: new LambdaClient({ region: 'eu-west-1' }) }).create('lambda:orders-api', 'shop');
    expect(q).toBeInstanceOf(LambdaConcurrencyQuiescer);
    expect(q.id).toBe('lambda:orders-api');
    expect(await q.capture()).toBe(3);
    lambda.restore();
  });

  it.each(['db-role:app', 'http:http://127.0.0.1:8080/maintenance', 'sqs:queue', 'orders-api'])('refuses %s with BAD_OPTION without a fallback', (spec) => {
    expect(thrown(() => new AwsQuiescerFactory().create(spec, 'shop'), `create('${spec}')`)).toMatchObject({ code: 'BAD_OPTION' });
  });

  it('hands db-role: and http: to the fallback factory when one is given', () => {
    const made: string[] = [];
    const fallback: QuiescerFactory = {
      create(spec, databaseId) {
        made.push(`${spec}@${databaseId}`);
        return { id: spec } as Quiescer;
      },
    };
    const factory = new AwsQuiescerFactory({ fallback });
    expect(factory.create('db-role:app', 'shop').id).toBe('db-role:app');
    expect(factory.create('http:http://api/maintenance', 'shop').id).toBe('http:http://api/maintenance');
    expect(thrown(() => factory.create('sqs:queue', 'shop'), "create('sqs:queue')")).toMatchObject({ code: 'BAD_OPTION' });
    expect(made).toEqual(['db-role:app@shop', 'http:http://api/maintenance@shop']);
  });
});
