import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbLedger } from '../src/adapters/aws/dynamodb-ledger.ts';
import { LedgerTableSchema } from '../src/adapters/aws/ledger-table-schema.ts';
import { LockedError } from '../src/core/errors.ts';
import type { QuiesceRecord, RunRecord } from '../src/ports.ts';
import { rejection } from './support/aws-errors.ts';
import { defined } from './support/defined.ts';

/** What a promise rejected with; fails the test when it resolves. */
const ddb = mockClient(DynamoDBDocumentClient);
beforeEach(() => ddb.reset());

const NOW = new Date('2025-06-01T12:00:00.000Z');
const TABLE = 'safeshift-ledger';
const ledger = () => new DynamoDbLedger({ tableName: TABLE, client: new DynamoDBClient({ region: 'eu-west-1' }), now: () => NOW });

const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: { httpStatusCode: 400 } });
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000).toISOString();

const RUN: RunRecord = { runId: 'run1', database: 'shop', kind: 'upgrade', status: 'running', startedAt: '2025-06-01T11:00:00.000Z', targetVersion: '7' };

describe('DynamoDbLedger lock', () => {
  it('takes a free lock with a conditional write that only the same owner may repeat', async () => {
    ddb.on(UpdateCommand).resolves({
      Attributes: { pk: 'DB#shop', sk: 'LOCK', owner: 'run1', database: 'shop', acquiredAt: NOW.toISOString(), expiresAt: '2025-06-01T18:00:00.000Z' },
    });
    const lock = await ledger().acquireLock('shop', 'run1', 6 * 3_600_000);
    expect(lock).toEqual({ database: 'shop', owner: 'run1', acquiredAt: NOW.toISOString(), expiresAt: '2025-06-01T18:00:00.000Z' });
    const input = defined(ddb.commandCalls(UpdateCommand)[0], 'the UpdateCommand call').args[0].input;
    expect(input).toMatchObject({
      TableName: TABLE,
      Key: { pk: 'DB#shop', sk: 'LOCK' },
      ConditionExpression: 'attribute_not_exists(#pk) OR #owner = :owner',
    });
    expect(input.ExpressionAttributeNames).toMatchObject({ '#pk': 'pk', '#owner': 'owner' });
    expect(input.ExpressionAttributeValues).toMatchObject({ ':owner': 'run1' });
    expect(Object.values(defined(input.ExpressionAttributeValues, 'ExpressionAttributeValues'))).toContain('2025-06-01T18:00:00.000Z');
    // Re-entrant: a retried step keeps the time the lock was first taken.
    expect(input.UpdateExpression).toMatch(/#f\d+ = if_not_exists\(#f\d+, :f\d+\)/);
  });

  it('reports a lock held by another run as LOCKED, naming the owner and its age', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    ddb
      .on(GetCommand)
      .resolves({ Item: { owner: 'run0', database: 'shop', acquiredAt: minutesAgo(10), expiresAt: new Date(NOW.getTime() + 5 * 60_000).toISOString() } });
    const error = await rejection<LockedError>(ledger().acquireLock('shop', 'run1', 60_000));
    expect(error).toBeInstanceOf(LockedError);
    expect(error.code).toBe('LOCKED');
    expect(error.message).toMatch(/locked by run run0, which took the lock 10 min ago/);
    expect(error.message).toMatch(/expires in 5 min/);
    expect(error.message).not.toMatch(/stale/);
    expect(error.details).toMatchObject({ owner: 'run0', stale: false, ageMs: 600_000 });
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: 'DB#shop', sk: 'LOCK' }, ConsistentRead: true });
  });

  it('reports an expired lock as stale and never takes it over', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    ddb.on(GetCommand).resolves({ Item: { owner: 'run0', database: 'shop', acquiredAt: minutesAgo(400), expiresAt: minutesAgo(40) } });
    const error = await rejection<LockedError>(ledger().acquireLock('shop', 'run1', 60_000));
    expect(error).toMatchObject({ code: 'LOCKED' });
    expect(error.message).toMatch(/stale: it expired 40 min ago/);
    expect(error.message).toMatch(/6 h 40 min ago/);
    expect(error.message).toMatch(/break the lock on purpose/);
    expect(error.details).toMatchObject({ stale: true });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(ddb.commandCalls(DeleteCommand)).toHaveLength(0);
  });

  it('tries again when the holder released between the failed write and the read', async () => {
    ddb
      .on(UpdateCommand)
      .rejectsOnce(conditionFailed())
      .resolves({ Attributes: { owner: 'run1', database: 'shop', acquiredAt: NOW.toISOString(), expiresAt: NOW.toISOString() } });
    ddb.on(GetCommand).resolves({});
    await expect(ledger().acquireLock('shop', 'run1', 0)).resolves.toMatchObject({ owner: 'run1' });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(2);
  });

  it('releases only its own lock, quietly', async () => {
    ddb.on(DeleteCommand).rejects(conditionFailed());
    await ledger().releaseLock('shop', 'run1');
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toMatchObject({
      Key: { pk: 'DB#shop', sk: 'LOCK' },
      ConditionExpression: '#owner = :owner',
      ExpressionAttributeValues: { ':owner': 'run1' },
    });
  });

  it('breaks a lock on purpose and returns what it held', async () => {
    ddb.on(DeleteCommand).resolves({ Attributes: { pk: 'DB#shop', sk: 'LOCK', owner: 'run0', database: 'shop', acquiredAt: 'a', expiresAt: 'b' } });
    expect(await ledger().breakLock('shop')).toEqual({ database: 'shop', owner: 'run0', acquiredAt: 'a', expiresAt: 'b' });
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: 'DB#shop', sk: 'LOCK' }, ReturnValues: 'ALL_OLD' });
    ddb.on(DeleteCommand).resolves({});
    expect(await ledger().breakLock('shop')).toBeUndefined();
  });
});

describe('DynamoDbLedger runs', () => {
  it('writes a new run with its index keys, on the condition that it does not exist', async () => {
    ddb.on(PutCommand).resolves({});
    expect(await ledger().startRun(RUN)).toEqual(RUN);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': 'pk' },
      Item: {
        pk: 'RUN#run1',
        sk: 'RUN',
        entity: 'RUN',
        gsi1pk: 'DB#shop',
        gsi1sk: 'RUN#2025-06-01T11:00:00.000Z#run1',
        gsi2pk: 'RUN',
        gsi2sk: '2025-06-01T11:00:00.000Z#run1',
        ...RUN,
      },
    });
  });

  it('returns the run the first attempt wrote when a retried start finds it', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    const first = { ...RUN, startedAt: '2025-06-01T10:59:00.000Z', fromVersion: '6' };
    ddb.on(GetCommand).resolves({ Item: { pk: 'RUN#run1', sk: 'RUN', gsi1pk: 'DB#shop', gsi1sk: 'x', gsi2pk: 'RUN', gsi2sk: 'y', entity: 'RUN', ...first } });
    expect(await ledger().startRun(RUN)).toEqual(first);
    ddb.on(GetCommand).resolves({ Item: { ...first, database: 'billing' } });
    await expect(ledger().startRun(RUN)).rejects.toMatchObject({ code: 'BAD_OPTION' });
  });

  it('updates a run in place and reports RUN_NOT_FOUND for an unknown id', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { pk: 'RUN#run1', sk: 'RUN', ...RUN, status: 'succeeded' } });
    expect(await ledger().updateRun('run1', { status: 'succeeded', endedAt: undefined })).toEqual({ ...RUN, status: 'succeeded' });
    const input = defined(ddb.commandCalls(UpdateCommand)[0], 'the UpdateCommand call').args[0].input;
    expect(input).toMatchObject({ Key: { pk: 'RUN#run1', sk: 'RUN' }, ConditionExpression: 'attribute_exists(#pk)', ReturnValues: 'ALL_NEW' });
    expect(input.ExpressionAttributeNames).toEqual({ '#pk': 'pk', '#f0': 'status' });
    expect(input.ExpressionAttributeValues).toEqual({ ':f0': 'succeeded' });

    ddb.on(UpdateCommand).rejects(conditionFailed());
    await expect(ledger().updateRun('nope', { status: 'succeeded' })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  it("lists a database's runs newest first from the byDatabase index, across pages, up to the limit", async () => {
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: [{ ...RUN, runId: 'r3', gsi1pk: 'DB#shop' }], LastEvaluatedKey: { pk: 'RUN#r3' } })
      .resolvesOnce({
        Items: [
          { ...RUN, runId: 'r2' },
          { ...RUN, runId: 'r1' },
        ],
      });
    const runs = await ledger().listRuns('shop', 2);
    expect(runs.map((r) => r.runId)).toEqual(['r3', 'r2']);
    expect(runs[0]).not.toHaveProperty('gsi1pk');
    const [first, second] = ddb.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({
      IndexName: LedgerTableSchema.byDatabase.indexName,
      ScanIndexForward: false,
      Limit: 2,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeValues: { ':pk': 'DB#shop', ':prefix': 'RUN#' },
    });
    expect(second).toMatchObject({ Limit: 1, ExclusiveStartKey: { pk: 'RUN#r3' } });

    ddb.reset();
    ddb.on(QueryCommand).resolves({ Items: [] });
    await ledger().listRuns();
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({ IndexName: 'byType', ExpressionAttributeValues: { ':pk': 'RUN' } });
  });
});

describe('DynamoDbLedger quiesced APIs, snapshots, rehearsals', () => {
  const record: QuiesceRecord = { runId: 'run1', database: 'shop', apiId: 'lambda:orders-api', prior: null, status: 'quiescing' };

  it('keeps the first prior state recorded for an API, so a retry cannot overwrite it', async () => {
    ddb.on(UpdateCommand).resolves({});
    await ledger().putQuiesce(record);
    const input = defined(ddb.commandCalls(UpdateCommand)[0], 'the UpdateCommand call').args[0].input;
    expect(input.Key).toEqual({ pk: 'RUN#run1', sk: 'QUIESCE#lambda:orders-api' });
    const names = Object.entries(defined(input.ExpressionAttributeNames, 'ExpressionAttributeNames'));
    const values = defined(input.ExpressionAttributeValues, 'ExpressionAttributeValues');
    const priorRef = defined(
      names.find(([, name]) => name === 'prior'),
      'the name of prior',
    )[0];
    expect(input.UpdateExpression).toContain(`${priorRef} = if_not_exists(${priorRef}, :${priorRef.slice(1)})`);
    expect(values[`:${priorRef.slice(1)}`]).toBeNull();
    const firstRef = defined(
      names.find(([, name]) => name === 'firstRecordedAt'),
      'the name of firstRecordedAt',
    )[0];
    expect(input.UpdateExpression).toContain(`${firstRef} = if_not_exists(${firstRef}, :${firstRef.slice(1)})`);
    expect(Object.values(values)).toEqual(expect.arrayContaining(['DB#shop', 'QUIESCE#run1#lambda:orders-api', 'quiescing']));
  });

  it("lists a run's quiesced APIs with a consistent read; `active` leaves out the resumed ones", async () => {
    ddb.on(QueryCommand).resolves({
      Items: [
        { ...record, apiId: 'lambda:b', status: 'resumed', firstRecordedAt: '2025-06-01T11:31:00.000Z' },
        { ...record, status: 'quiesced', pk: 'RUN#run1', sk: 'QUIESCE#a', firstRecordedAt: '2025-06-01T11:30:00.000Z' },
      ],
    });
    const all = await ledger().listQuiesced({ runId: 'run1' });
    expect(all.map((r) => r.apiId)).toEqual(['lambda:orders-api', 'lambda:b']);
    expect(all[0]).toEqual({ ...record, status: 'quiesced' });
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      ConsistentRead: true,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeValues: { ':pk': 'RUN#run1', ':prefix': 'QUIESCE#' },
    });
    expect((await ledger().listQuiesced({ runId: 'run1', active: true })).map((r) => r.status)).toEqual(['quiesced']);
    expect((await ledger().listQuiesced({ runId: 'run1', active: false })).map((r) => r.status)).toEqual(['resumed']);
  });

  it('puts and gets a snapshot by id, and lists snapshots of all databases from byType', async () => {
    ddb.on(PutCommand).resolves({});
    const snap = {
      snapshotId: 'ss-pre-shop-run1',
      database: 'shop',
      kind: 'pre-upgrade',
      runId: 'run1',
      createdAt: '2025-06-01T11:05:00.000Z',
      schemaVersion: '6',
      status: 'creating',
    } as const;
    await ledger().putSnapshot(snap);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      pk: 'SNAP#ss-pre-shop-run1',
      sk: 'SNAP',
      gsi1pk: 'DB#shop',
      gsi1sk: 'SNAP#2025-06-01T11:05:00.000Z#ss-pre-shop-run1',
    });
    ddb.on(GetCommand).resolves({ Item: { pk: 'SNAP#ss-pre-shop-run1', sk: 'SNAP', entity: 'SNAP', ...snap } });
    expect(await ledger().getSnapshot('ss-pre-shop-run1')).toEqual(snap);
    ddb.on(GetCommand).resolves({});
    expect(await ledger().getSnapshot('nope')).toBeUndefined();
    ddb.on(QueryCommand).resolves({ Items: [snap] });
    expect(await ledger().listSnapshots()).toEqual([snap]);
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      IndexName: 'byType',
      ScanIndexForward: false,
      ExpressionAttributeValues: { ':pk': 'SNAP' },
    });
  });

  it("stores a rehearsal under its run and lists a database's rehearsals", async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(QueryCommand).resolves({ Items: [] });
    await ledger().putRehearsal({
      runId: 'run2',
      database: 'shop',
      createdAt: 't',
      fromVersion: '6',
      toVersion: '7',
      migrations: [],
      predictedWindowMs: 1000,
      status: 'succeeded',
    });
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({ pk: 'RUN#run2', sk: 'REHEARSAL', gsi1sk: 'REHEARSAL#t#run2' });
    await ledger().listRehearsals('shop');
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      IndexName: 'byDatabase',
      ExpressionAttributeValues: { ':pk': 'DB#shop', ':prefix': 'REHEARSAL#' },
    });
  });
});
