import { GetExecutionHistoryCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Ledger, LockRecord, QuiesceRecord, RunRecord, SnapshotRecord } from '../src/ports.ts';
import type { RunProgress } from '../src/console-server/backend.ts';
import { AwsConsoleBackend } from '../src/console-server/aws-backend.ts';
import { defined } from './support/defined.ts';

/**
 * The AWS console backend: reads from the ledger, starts the restore state machine named after the
 * run, follows it through the execution history. Step Functions is mocked; the ledger is in memory.
 */
const MACHINE = 'arn:aws:states:eu-west-1:111122223333:stateMachine:safeshift-restore';
const sfn = mockClient(SFNClient);

function memoryLedger(runs: RunRecord[], snapshots: SnapshotRecord[], quiesced: QuiesceRecord[], locks: LockRecord[]): Ledger {
  const none = () => Promise.reject(new Error('not used by the console'));
  return {
    acquireLock: none,
    releaseLock: none,
    breakLock: none,
    startRun: none,
    updateRun: none,
    putSnapshot: none,
    putQuiesce: none,
    putRehearsal: none,
    getLock: (database) => Promise.resolve(locks.find((l) => l.database === database)),
    getRun: (id) => Promise.resolve(runs.find((r) => r.runId === id)),
    listRuns: (database, limit) => Promise.resolve(runs.filter((r) => !database || r.database === database).slice(0, limit)),
    getSnapshot: (id) => Promise.resolve(snapshots.find((s) => s.snapshotId === id)),
    listSnapshots: (database) => Promise.resolve(snapshots.filter((s) => !database || s.database === database)),
    listQuiesced: (f = {}) =>
      Promise.resolve(
        quiesced.filter(
          (q) =>
            (!f.database || q.database === f.database) &&
            (!f.runId || q.runId === f.runId) &&
            (f.active === undefined || (q.status !== 'resumed') === f.active),
        ),
      ),
    listRehearsals: () => Promise.resolve([]),
  };
}

const at = '2026-01-01T00:00:00.000Z';
let runs: RunRecord[];
let locks: LockRecord[];
let backend: AwsConsoleBackend;

beforeEach(() => {
  sfn.reset();
  runs = [
    {
      runId: 'u1',
      database: 'shop',
      kind: 'upgrade',
      status: 'succeeded',
      startedAt: at,
      endedAt: at,
      fromVersion: '2',
      toVersion: '3',
      snapshotId: 'ss-pre-shop-u1',
    },
  ];
  const snapshots: SnapshotRecord[] = [
    { snapshotId: 'ss-pre-shop-u1', database: 'shop', kind: 'pre-upgrade', runId: 'u1', createdAt: at, schemaVersion: '2', status: 'available' },
    { snapshotId: 'ss-pre-billing-b1', database: 'billing', kind: 'pre-upgrade', runId: 'b1', createdAt: at, schemaVersion: '7', status: 'available' },
  ];
  const quiesced: QuiesceRecord[] = [
    { runId: 'u1', database: 'shop', apiId: 'lambda:orders-api', prior: { reservedConcurrency: null }, status: 'resumed', quiescedAt: at, resumedAt: at },
  ];
  locks = [];
  backend = new AwsConsoleBackend({
    ledgerTable: 'ledger',
    restoreStateMachineArn: MACHINE,
    sfn: new SFNClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    ledger: memoryLedger(runs, snapshots, quiesced, locks),
    pollMs: 10,
  });
});

afterEach(() => backend.close());

describe('AwsConsoleBackend', () => {
  it('lists databases with the version their latest run recorded, and says compatible_from is not read', async () => {
    const dbs = await backend.listDatabases();
    expect(dbs.map((d) => d.name)).toEqual(['billing', 'shop']);
    expect(dbs[1]).toMatchObject({ schemaVersion: '3', compatibleFrom: null, restorableSnapshots: 1, restoreQuiesces: ['lambda:orders-api'] });
    expect(dbs[1]?.versionNote).toMatch(/compatible_from/);
  });

  it("refuses another database's snapshot and an unknown one without starting an execution", async () => {
    await expect(backend.startRestore('shop', 'ss-pre-billing-b1')).rejects.toMatchObject({ code: 'SNAPSHOT_FOREIGN' });
    await expect(backend.startRestore('shop', 'ss-nope')).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('refuses while a run holds the database, and says how to break a stale lock on purpose', async () => {
    locks.push({ database: 'shop', owner: 'u9', acquiredAt: at, expiresAt: '2026-01-01T06:00:00.000Z' });
    const refusal = await backend.startRestore('shop', 'ss-pre-shop-u1').catch((e: unknown) => e);
    expect(refusal).toMatchObject({ code: 'LOCKED', details: { owner: 'u9', stale: true } });
    expect((refusal as Error).message).toContain('safeshift unlock --database shop');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('starts the restore state machine named after the run, with the APIs the last upgrade stopped', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE}:x`, startDate: new Date() });
    const { runId } = await backend.startRestore('shop', 'ss-pre-shop-u1');
    const call = defined(sfn.commandCalls(StartExecutionCommand)[0], 'the StartExecution call');
    expect(call.args[0].input.stateMachineArn).toBe(MACHINE);
    expect(call.args[0].input.name).toBe(runId);
    expect(JSON.parse(defined(call.args[0].input.input, 'the execution input'))).toEqual({
      run: { runId, kind: 'restore', database: 'shop', snapshotId: 'ss-pre-shop-u1', quiesce: ['lambda:orders-api'], rehearsal: false },
    });
    // Before its first step writes the run, the console still knows it is running.
    expect(await backend.getRun(runId)).toMatchObject({ runId, kind: 'restore', status: 'running' });
  });

  it('follows a run through the execution history until the ledger says how it ended', async () => {
    sfn.on(StartExecutionCommand).resolves({});
    const { runId } = await backend.startRestore('shop', 'ss-pre-shop-u1');
    const entered = (name: string, s: number) => ({
      type: 'TaskStateEntered',
      timestamp: new Date(Date.parse(at) + s * 1000),
      id: s,
      stateEnteredEventDetails: { name },
    });
    sfn
      .on(GetExecutionHistoryCommand)
      .resolvesOnce({ events: [entered('Preflight', 0)] as never })
      .resolves({ events: [entered('Preflight', 0), entered('Quiesce', 1), { type: 'ExecutionSucceeded', id: 9, timestamp: new Date() }] as never });
    const seen: RunProgress[] = [];
    await new Promise<void>((resolve) => {
      backend.followRun(runId, (p) => {
        seen.push(p);
        if (seen.length === 1) runs.push({ runId, database: 'shop', kind: 'restore', status: 'succeeded', startedAt: at, endedAt: at });
        if (p.done) resolve();
      });
    });
    expect(seen[0]).toMatchObject({ done: false, status: 'running', states: [{ state: 'Preflight', enteredAt: at }] });
    expect(seen.at(-1)).toMatchObject({ done: true, status: 'succeeded' });
    expect(seen.at(-1)?.states.map((s) => s.state)).toEqual(['Preflight', 'Quiesce']);
    expect(sfn.commandCalls(GetExecutionHistoryCommand)[0]?.args[0].input.executionArn).toBe(
      `arn:aws:states:eu-west-1:111122223333:execution:safeshift-restore:${runId}`,
    );
  });
});
