import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { fenceSlotName, LocalWriteFence } from '../src/adapters/local/write-fence.ts';
import { migrate } from '../src/core/migrate.ts';
import type { SafeshiftError } from '../src/core/errors.ts';
import { testServerUrl, withFreshDatabase } from './support/database.ts';
import { migrationsDir } from './support/migrations-dir.ts';

/** Whether the replication slot the fence keeps for a run is there (one per run, whatever it marks; other files' runs have their own). */
async function slotKept(runId: string): Promise<boolean> {
  const admin = await connectPg(testServerUrl());
  try {
    const { rowCount } = await admin.query('select 1 from pg_replication_slots where slot_name = $1', [fenceSlotName(runId)]);
    return rowCount === 1;
  } finally {
    await admin.end();
  }
}

describe('the local write fence', () => {
  it('finds every committed row change that is not the run’s, and nothing else', () =>
    withFreshDatabase(async (db) =>
      withFreshDatabase(async (other) => {
        const fence = new LocalWriteFence(testServerUrl());
        const runId = randomUUID();
        const c = db.client;
        await c.query('create table orders (id int primary key, note text); create table lines (id int); create table audit (id int)');
        await c.query(`insert into orders values (1, 'old'), (2, 'old'), (3, 'old'); insert into lines values (1)`);
        await other.client.query('create table elsewhere (id int)');
        const mark = await fence.mark(db.name, runId);
        expect(mark.slot).toBe(fenceSlotName(runId));
        expect(await slotKept(runId)).toBe(true);

        // Nothing yet: a clean proof.
        expect(await fence.check(db.name, [mark], runId)).toEqual({ proven: true, foreign: [] });

        // The run's own transaction (with a subtransaction inside a DO block's exception handler) carries its mark.
        await c.query(`begin; ${fence.ownWrites(runId).inTransaction}; update orders set note = 'run' where id = 1`);
        await c.query(`do $$ begin begin insert into audit values (7); exception when others then null; end; end $$`);
        await c.query('commit');
        // Rolled back, another database, or another run's mark: none of them is a write to this database that stands.
        await c.query(`begin; insert into orders values (99, 'rolled back'); rollback`);
        await other.client.query('insert into elsewhere values (1)');
        expect(await fence.check(db.name, [mark], runId)).toEqual({ proven: true, foreign: [] });

        // Everyone else's: an insert, an update, a delete, a truncate, and a write marked for another run.
        await c.query(`insert into orders values (4, 'foreign')`);
        await c.query(`update orders set note = 'foreign' where id = 2`);
        await c.query(`delete from orders where id = 3`);
        await c.query('truncate lines');
        await c.query(`begin; ${fence.ownWrites(randomUUID()).inTransaction}; insert into audit values (8); commit`);
        const report = await fence.check(db.name, [mark], runId);
        expect(report.note).toBeUndefined();
        expect(report.proven).toBe(true);
        expect(report.foreign).toHaveLength(5);
        const [insert, update, del, truncate, otherRun] = report.foreign;
        expect([insert, update, del, otherRun].map((w) => [w?.relations, w?.changes])).toEqual([
          [['public.orders'], 1],
          [['public.orders'], 1],
          [['public.orders'], 1],
          [['public.audit'], 1],
        ]);
        // A TRUNCATE logs no row change: its commit drops the table's old storage, which has no name any more.
        expect(truncate?.changes).toBe(0);
        expect(truncate?.relations).toEqual([expect.stringMatching(/^storage \d+ \(since dropped\)$/)]);
        expect(report.foreign.every((w) => /^\d{4}-\d\d-\d\d /.test(w.committedAt))).toBe(true);

        // A database the run never marked cannot be vouched for.
        expect(await fence.check(other.name, [mark], runId)).toMatchObject({ proven: false, foreign: [] });

        await fence.release(runId);
        expect(await slotKept(runId)).toBe(false);
        await fence.release(runId);
      }),
    ));

  it('follows the database through a rename: the mark names the database, not its name', () =>
    withFreshDatabase(async (db) => {
      const fence = new LocalWriteFence(testServerUrl());
      const runId = randomUUID();
      await db.client.query('create table t (id int)');
      const mark = await fence.mark(db.name, runId);
      await db.client.query('insert into t values (1)');
      await db.client.end();
      const renamed = `${db.name}_r`;
      const admin = await connectPg(testServerUrl());
      try {
        await admin.query(`alter database ${db.name} rename to ${renamed}`);
        const report = await fence.check(renamed, [mark], runId);
        expect(report.foreign.map((w) => w.relations)).toEqual([['public.t']]);
        await admin.query(`alter database ${renamed} rename to ${db.name}`);
      } finally {
        await admin.end();
        await fence.release(runId);
      }
    }));

  it('knows every write a run’s migrations make as the run’s own, in a transaction or not, and still places a failure', () =>
    withFreshDatabase(async (db) => {
      const fence = new LocalWriteFence(testServerUrl());
      const runId = randomUUID();
      await db.client.query(`create table orders (id int primary key, note text); insert into orders select g, 'x' from generate_series(1, 50) g`);
      const mark = await fence.mark(db.name, runId);
      const folder = await migrationsDir({
        'V1__backfill.sql': `alter table orders add column total int default 0;\nupdate orders set total = id * 2;\ntruncate table orders;\n`,
        'V2__online.sql':
          '-- safeshift:no-transaction\ncreate table extra (id int);\ninsert into extra select generate_series(1, 10);\n' +
          'create index concurrently extra_id on extra (id);\ndrop index concurrently extra_id;\nvacuum full extra;\n' +
          `do $$ begin insert into extra values (11); commit; insert into extra values (12); end $$;\n`,
        'V3__fails.sql': 'create table later (id int);\nselect 1/0;\n',
      });
      try {
        const ownWrites = fence.ownWrites(runId);
        const failure = (await migrate({ client: db.client, dir: folder.dir, runId, ownWrites }).catch((e: unknown) => e)) as SafeshiftError;
        // The run's mark opens the one-round-trip transaction; the failing statement is still named.
        expect(failure.code).toBe('MIGRATION_FAILED');
        expect(failure.location).toMatchObject({ file: 'V3__fails.sql', statementIndex: 1, line: 2 });
        const { rows } = await db.client.query<{ n: number }>('select count(*)::int as n from extra');
        expect(rows[0]?.n).toBe(12);
        expect(await fence.check(db.name, [mark], runId)).toEqual({ proven: true, foreign: [] });
        // The same history seen by another run: every one of those writes is foreign to it.
        const other = await fence.check(db.name, [mark], randomUUID());
        expect(other.foreign.length).toBeGreaterThanOrEqual(6);
      } finally {
        await folder.cleanup();
        await fence.release(runId);
      }
    }));
});
