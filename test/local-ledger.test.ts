import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { PostgresLedger } from '../src/adapters/local/postgres-ledger.ts';
import { LockedError, SafeshiftError } from '../src/core/errors.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import type { QuiesceRecord, RunRecord, SnapshotRecord } from '../src/ports.ts';
import { testServerUrl } from './support/database.ts';

const opened: PostgresLedger[] = [];
const controls: string[] = [];

/** A ledger in a control database of its own, closed and dropped after the test. */
async function ledger(database = newControl()): Promise<PostgresLedger> {
  const l = await PostgresLedger.open(testServerUrl(), { database });
  opened.push(l);
  return l;
}

function newControl(): string {
  const name = `ctl_${process.pid}_${randomBytes(4).toString('hex')}`;
  controls.push(name);
  return name;
}

afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
  const admin = await connectPg(testServerUrl());
  try {
    for (const name of controls.splice(0)) await admin.query(`drop database if exists ${escapeIdentifier(name)} with (force)`);
  } finally {
    await admin.end();
  }
});

async function lockedError(promise: Promise<unknown>): Promise<LockedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LockedError);
  expect((error as LockedError).code).toBe('LOCKED');
  return error as LockedError;
}

const run = (runId: string, startedAt: string, database = 'shop'): RunRecord => ({ runId, database, kind: 'upgrade', status: 'running', startedAt });

describe('PostgresLedger', () => {
  it('creates its control database and tables, also when two processes open it at once', async () => {
    const name = newControl();
    const [a, b] = await Promise.all([ledger(name), ledger(name)]);
    await a.startRun(run('r1', '2024-01-01T00:00:00.000Z'));
    expect((await b.getRun('r1'))?.status).toBe('running');
    const again = await ledger(name);
    expect(await again.listRuns()).toHaveLength(1);
  });

  describe('the run lock', () => {
    it('is exclusive between owners, re-entrant for its owner, and released only by its owner', async () => {
      const l = await ledger();
      const first = await l.acquireLock('shop', 'run-a', 60_000);
      expect(first).toMatchObject({ database: 'shop', owner: 'run-a' });
      const error = await lockedError(l.acquireLock('shop', 'run-b', 60_000));
      expect(error.message).toMatch(/locked by run "run-a" \(taken \d+s ago, expires in/);
      expect(error.details).toMatchObject({ owner: 'run-a', stale: false });

      await new Promise((r) => setTimeout(r, 20));
      const again = await l.acquireLock('shop', 'run-a', 120_000);
      expect(again.acquiredAt).toBe(first.acquiredAt);
      expect(Date.parse(again.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));

      await l.releaseLock('shop', 'run-b');
      expect((await l.getLock('shop'))?.owner).toBe('run-a');
      await l.acquireLock('other-db', 'run-b', 60_000); // locks are per database
      await l.releaseLock('shop', 'run-a');
      expect(await l.getLock('shop')).toBeUndefined();
      expect((await l.acquireLock('shop', 'run-b', 60_000)).owner).toBe('run-b');
    });

    it('reports an expired lock as stale and lets it go only when broken on purpose', async () => {
      const l = await ledger();
      await l.acquireLock('shop', 'crashed-run', 1);
      await new Promise((r) => setTimeout(r, 30));
      const error = await lockedError(l.acquireLock('shop', 'run-b', 60_000));
      expect(error.message).toMatch(/stale/);
      expect(error.message).toContain('safeshift unlock --database shop');
      expect(error.details).toMatchObject({ owner: 'crashed-run', stale: true });
      expect((await l.getLock('shop'))?.owner).toBe('crashed-run');

      expect((await l.breakLock('shop'))?.owner).toBe('crashed-run');
      expect(await l.breakLock('shop')).toBeUndefined();
      expect((await l.acquireLock('shop', 'run-b', 60_000)).owner).toBe('run-b');
    });

    it('goes to exactly one of many owners racing from two ledger instances', async () => {
      const name = newControl();
      const [a, b] = [await ledger(name), await ledger(name)];
      const owners = Array.from({ length: 8 }, (_, i) => `run-${i}`);
      const results = await Promise.allSettled(owners.map((o, i) => (i % 2 ? a : b).acquireLock('shop', o, 60_000)));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => r.reason instanceof LockedError)).toBe(true);
      expect((await a.getLock('shop'))?.owner).toBe((won[0] as PromiseFulfilledResult<{ owner: string }>).value.owner);
    });
  });

  it('keeps runs: a repeated start returns the first, patches merge, newest first', async () => {
    const l = await ledger();
    const first = await l.startRun({ ...run('r1', '2024-01-01T00:00:00.000Z'), targetVersion: '3' });
    expect(await l.startRun({ ...run('r1', '2024-06-01T00:00:00.000Z'), targetVersion: '9' })).toEqual(first);
    await l.startRun(run('r2', '2024-03-01T00:00:00.000Z'));
    await l.startRun(run('r3', '2024-02-01T00:00:00.000Z', 'other'));

    await l.updateRun('r1', { status: 'succeeded', toVersion: '3' });
    const updated = await l.updateRun('r1', { endedAt: '2024-01-01T00:05:00.000Z', applied: ['V3__x.sql'] });
    expect(updated).toEqual({ ...first, status: 'succeeded', toVersion: '3', endedAt: '2024-01-01T00:05:00.000Z', applied: ['V3__x.sql'] });
    expect(await l.getRun('r1')).toEqual(updated);
    expect(await l.getRun('nope')).toBeUndefined();

    expect((await l.listRuns()).map((r) => r.runId)).toEqual(['r2', 'r3', 'r1']);
    expect((await l.listRuns('shop')).map((r) => r.runId)).toEqual(['r2', 'r1']);
    expect((await l.listRuns(undefined, 1)).map((r) => r.runId)).toEqual(['r2']);

    const error = await l.updateRun('nope', { status: 'succeeded' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeshiftError);
    expect((error as SafeshiftError).code).toBe('RUN_NOT_FOUND');
    await expect(l.startRun({ ...run('r1', '2024-01-01T00:00:00.000Z', 'other') })).rejects.toThrow(/already used/);
  });

  it('keeps snapshots, quiesced APIs and rehearsals', async () => {
    const l = await ledger();
    const snap = (snapshotId: string, createdAt: string, database = 'shop'): SnapshotRecord => ({
      snapshotId,
      database,
      kind: 'pre-upgrade',
      runId: 'r1',
      createdAt,
      schemaVersion: '2',
      status: 'creating',
    });
    await l.putSnapshot(snap('s1', '2024-01-01T00:00:00.000Z'));
    await l.putSnapshot(snap('s2', '2024-02-01T00:00:00.000Z'));
    await l.putSnapshot(snap('s3', '2024-03-01T00:00:00.000Z', 'other'));
    await l.putSnapshot({ ...snap('s1', '2024-01-01T00:00:00.000Z'), status: 'available' });
    expect(await l.getSnapshot('s1')).toEqual({ ...snap('s1', '2024-01-01T00:00:00.000Z'), status: 'available' });
    expect((await l.listSnapshots('shop')).map((s) => s.snapshotId)).toEqual(['s2', 's1']);
    expect(await l.listSnapshots()).toHaveLength(3);

    const q = (apiId: string, status: QuiesceRecord['status'], runId = 'r1'): QuiesceRecord => ({
      runId,
      database: 'shop',
      apiId,
      prior: { mode: 'normal', nested: [1, null] },
      status,
    });
    await l.putQuiesce(q('db-role:app', 'quiescing'));
    await l.putQuiesce(q('http:http://x/m', 'quiesced'));
    await l.putQuiesce(q('db-role:app', 'quiesced'));
    await l.putQuiesce(q('db-role:app', 'resumed', 'r0'));
    expect(await l.listQuiesced({ runId: 'r1' })).toEqual([q('db-role:app', 'quiesced'), q('http:http://x/m', 'quiesced')]);
    expect((await l.listQuiesced({ active: true })).map((r) => r.runId)).toEqual(['r1', 'r1']);
    expect(await l.listQuiesced({ active: false })).toEqual([q('db-role:app', 'resumed', 'r0')]);
    expect(await l.listQuiesced({ database: 'other' })).toEqual([]);
    expect(await l.listQuiesced()).toHaveLength(3);

    const rehearsal = {
      runId: 'r1',
      database: 'shop',
      createdAt: '2024-01-01T00:00:00.000Z',
      fromVersion: null,
      toVersion: '2',
      migrations: [{ script: 'V1__a.sql', executionMs: 12, lockRetries: 0 }],
      predictedWindowMs: 900,
      status: 'succeeded' as const,
    };
    await l.putRehearsal(rehearsal);
    await l.putRehearsal({
      ...rehearsal,
      runId: 'r2',
      createdAt: '2024-02-01T00:00:00.000Z',
      status: 'failed',
      error: { code: 'MIGRATION_FAILED', message: 'boom' },
    });
    expect((await l.listRehearsals('shop')).map((r) => r.runId)).toEqual(['r2', 'r1']);
    expect((await l.listRehearsals('shop'))[1]).toEqual(rehearsal);
    expect(await l.listRehearsals('other')).toEqual([]);
  });
});
