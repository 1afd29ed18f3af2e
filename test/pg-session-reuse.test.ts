import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectPg, reusingSessions } from '../src/adapters/local/pg-connection.ts';
import { testServerUrl } from './support/database.ts';

/** A name no other test file uses, so counting its sessions on the shared server sees only ours. */
let name: string;
let admin: pg.Client;

beforeEach(async () => {
  name = `safeshift-test-reuse-${randomBytes(4).toString('hex')}`;
  admin = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-admin' });
});
afterEach(async () => {
  await admin.end();
});

const open = () => connectPg(testServerUrl(), { applicationName: name });
const pidOf = async (c: pg.Client): Promise<number> => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? -1;
const sessions = async (): Promise<number[]> =>
  (await admin.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1 order by pid', [name])).rows.map((r) => r.pid);

describe('reusingSessions', () => {
  it('hands an ended session to the next caller, never one in use, and closes them all at the end', async () => {
    await reusingSessions(testServerUrl(), [name], async () => {
      const first = await open();
      const pid = await pidOf(first);
      await first.end();
      await first.end(); // a second end is harmless, and hands nothing back twice
      await expect(first.query('select 1'), 'an ended lease is not queryable').rejects.toThrow(/not queryable/);
      const again = await open();
      const beside = await open();
      expect(await pidOf(again), 'the ended session, taken again').toBe(pid);
      expect(await pidOf(beside), 'a second session while the first is in use').not.toBe(pid);
      await Promise.all([again.end(), beside.end()]);
      expect(await sessions(), 'both kept while the scope lasts').toHaveLength(2);
    });
    await expect.poll(sessions, { message: 'every kept session closed with the scope' }).toEqual([]);
  });

  it('gives a session back as new: settings, roles and advisory locks of the last holder are gone', async () => {
    await reusingSessions(testServerUrl(), [name], async () => {
      const first = await open();
      await first.query(`set statement_timeout = 1234; set role pg_monitor; select pg_advisory_lock(7305)`);
      await first.end();
      const again = await open();
      const { rows } = await again.query<{ timeout: string; role: string; app: string; locks: number }>(
        `select current_setting('statement_timeout') as timeout, current_user as role, current_setting('application_name') as app,
                (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks`,
      );
      expect(rows[0]).toEqual({ timeout: '0', role: 'postgres', app: name, locks: 0 });
      await again.end();
    });
  });

  it('does not keep a session handed back inside a transaction, nor one the server ended meanwhile', async () => {
    await reusingSessions(testServerUrl(), [name], async () => {
      const inTransaction = await open();
      const busy = await pidOf(inTransaction);
      await inTransaction.query('begin');
      await inTransaction.end();
      const next = await open();
      const kept = await pidOf(next);
      expect(kept, 'a new session instead').not.toBe(busy);
      await next.end();
      // Ended by the server while kept, and asked for at once: it must not be given out.
      await admin.query('select pg_terminate_backend($1, 5000)', [kept]);
      const fresh = await open();
      expect(await pidOf(fresh)).not.toBe(kept);
      await fresh.end();
    });
  });

  it('opens sessions of other names, or to other URLs, anew each time', async () => {
    await reusingSessions(testServerUrl(), ['safeshift fleet'], async () => {
      const first = await open();
      const pid = await pidOf(first);
      await first.end();
      const second = await open();
      expect(await pidOf(second)).not.toBe(pid);
      await second.end();
    });
  });
});
