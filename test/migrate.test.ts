import { describe, expect, it } from 'vitest';
import { scenario } from './support/scenario.ts';
import type pg from 'pg';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { MigrationError, SafeshiftError } from '../src/core/errors.ts';
import { HistoryTable, DEFAULT_HISTORY } from '../src/core/history.ts';
import { migrate } from '../src/core/migrate.ts';
import { requireVersion } from '../src/core/version.ts';
import { databaseFingerprint } from './support/fingerprint.ts';

const { setup, onCleanup } = scenario();

async function history(client: pg.Client) {
  return new HistoryTable(client, DEFAULT_HISTORY).read();
}

async function tables(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ t: string }>(`select tablename as t from pg_tables where schemaname = 'public' order by 1`);
  return rows.map((r) => r.t);
}

describe('migrate', () => {
  it('applies SQL, TypeScript and repeatable migrations in version order, once', async () => {
    const { client, dir, put } = await setup({
      'V1__create_a.sql': 'create table a (id int primary key);\ninsert into a values (1), (2);',
      'V1.10__add_b.sql': 'create table b (id int);',
      'V1.9__add_c.sql': 'create table c (id int);',
      'V2__ts.ts': `export async function up({ client }) { await client.query('insert into a values (3)'); }`,
      'V2.5__js.js': `export async function up({ client }) { await client.query('insert into a values (4)'); }`,
      'R__view.sql': 'create or replace view v as select count(*) as n from a;',
    });
    const first = await migrate({ client, dir });
    expect(first.applied.map((a) => a.script)).toEqual(['V1__create_a.sql', 'V1.9__add_c.sql', 'V1.10__add_b.sql', 'V2__ts.ts', 'V2.5__js.js', 'R__view.sql']);
    expect(first.fromVersion).toBeNull();
    expect(first.toVersion).toBe('2.5');
    expect((await client.query<{ n: string }>('select n from v')).rows[0]?.n).toBe('4');
    const rows = await history(client);
    expect(rows.map((r) => [r.version, r.type, r.success, r.runId])).toEqual([
      ['1', 'SQL', true, first.runId],
      ['1.9', 'SQL', true, first.runId],
      ['1.10', 'SQL', true, first.runId],
      ['2', 'TS', true, first.runId],
      ['2.5', 'JS', true, first.runId],
      [null, 'SQL_REPEATABLE', true, first.runId],
    ]);

    const again = await migrate({ client, dir });
    expect(again.applied).toEqual([]);

    await put('R__view.sql', 'create or replace view v as select count(*) + 0 as n from a;');
    const third = await migrate({ client, dir });
    expect(third.applied.map((a) => a.script)).toEqual(['R__view.sql']);
  });

  it('stops at --target and changes nothing on --dry-run', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': 'create table b (id int);',
      'V3__c.sql': 'create table c (id int);',
    });
    const before = await databaseFingerprint(client);
    const dry = await migrate({ client, dir, dryRun: true, target: requireVersion('2', 'target') });
    expect(dry.planned.map((p) => p.script)).toEqual(['V1__a.sql', 'V2__b.sql']);
    expect(dry.toVersion).toBe('2');
    expect(await databaseFingerprint(client)).toEqual(before);

    const run = await migrate({ client, dir, target: requireVersion('2', 'target') });
    expect(run.applied.map((a) => a.script)).toEqual(['V1__a.sql', 'V2__b.sql']);
    expect(await tables(client)).toEqual(['a', 'b', 'safeshift_schema_history']);
    await expect(migrate({ client, dir, target: requireVersion('7', 'target') })).rejects.toMatchObject({ code: 'TARGET_NOT_FOUND' });
    await expect(migrate({ client, dir, target: requireVersion('1', 'target') })).rejects.toMatchObject({ code: 'TARGET_BEHIND' });
  });

  it('rolls back a failing migration with its history row and names file, statement, line, column and SQLSTATE', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table a (id int primary key);',
      'V2__b.sql': 'create table b (id int);\ninsert into a values (1);\n\ninsert into a\n  values (1);\n',
    });
    const error = await migrate({ client, dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    const e = error as MigrationError;
    expect(e.code).toBe('MIGRATION_FAILED');
    expect(e.outcome).toBe('rolled-back');
    expect(e.location).toMatchObject({ file: 'V2__b.sql', statementIndex: 2, line: 4, column: 1 });
    expect(e.details.sqlState).toBe('23505');
    expect(e.message).toContain('V2__b.sql:4:1');
    expect(e.message).toContain('insert into a');
    expect(e.details.appliedBefore).toEqual(['V1__a.sql']);
    expect(await tables(client)).toEqual(['a', 'safeshift_schema_history']);
    expect((await client.query<{ n: number }>('select count(*)::int as n from a')).rows[0]?.n).toBe(0);
    expect((await history(client)).map((r) => r.script)).toEqual(['V1__a.sql']);
  });

  it('points at the column of an error Postgres locates inside a statement', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': '-- comment\ncreate table a (id int);\nselect id,\n       missing_column\n  from a;',
    });
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('MIGRATION_FAILED');
    expect(e.location).toMatchObject({ line: 4, column: 8, statementIndex: 1 });
    expect(e.details.sqlState).toBe('42703');
    expect(await tables(client)).toEqual(['safeshift_schema_history']);
  });

  it('refuses a syntax error before changing anything, pointing at the right line', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': 'create table b (id int);\n\ncreate tabel c (id int);\n',
    });
    const before = await databaseFingerprint(client);
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('SYNTAX_ERROR');
    expect(e.outcome).toBe('refused');
    expect(e.message).toContain('V2__b.sql:3:8');
    expect(e.message).toContain('syntax error at or near "tabel"');
    expect(await databaseFingerprint(client)).toEqual(before);
  });

  it('refuses CREATE INDEX CONCURRENTLY in a transactional migration and says to add no-transaction', async () => {
    const { client, dir } = await setup({ 'V1__a.sql': 'create table a (id int);', 'V2__i.sql': 'create index concurrently a_id on a (id);' });
    const before = await databaseFingerprint(client);
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('LINT_VIOLATION');
    expect(e.message).toContain('-- safeshift:no-transaction');
    expect(await databaseFingerprint(client)).toEqual(before);
  });

  it('runs a no-transaction migration statement by statement and records exactly how far a failure got', async () => {
    const { client, dir, put } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__idx.sql':
        '-- safeshift:no-transaction\ncreate index concurrently a1 on a (id);\n' +
        'create index concurrently a2 on a (id);\nselect 1/0;\ncreate index concurrently a3 on a (id);\n',
      'V3__later.sql': 'create table later (id int);',
    });
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('MIGRATION_FAILED');
    expect(e.outcome).toBe('needs-operator');
    expect(e.location).toMatchObject({ file: 'V2__idx.sql', statementIndex: 2, line: 4 });
    const failed = (await history(client)).find((r) => r.script === 'V2__idx.sql');
    expect(failed).toMatchObject({ success: false, statementsApplied: 2, statementsTotal: 4 });
    const { rows: idx } = await client.query<{ indexname: string }>(`select indexname from pg_indexes where tablename = 'a' order by 1`);
    expect(idx.map((r) => r.indexname)).toEqual(['a1', 'a2']);

    // Further runs are refused until repair, and nothing changes meanwhile.
    const refused = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(refused.code).toBe('REPAIR_NEEDED');
    expect(await tables(client)).not.toContain('later');

    // The operator finishes by hand, fixes the file, repairs, and the run goes on.
    const { repair } = await import('../src/core/repair.ts');
    await put(
      'V2__idx.sql',
      '-- safeshift:no-transaction\ncreate index concurrently a1 on a (id);\n' +
        'create index concurrently a2 on a (id);\ncreate index concurrently a3 on a (id);\n',
    );
    await client.query('create index concurrently a3 on a (id)');
    const repaired = await repair({ client, dir });
    expect(repaired.removedFailed.map((r) => r.script)).toEqual(['V2__idx.sql']);
    await client.query('drop index a1, a2, a3');
    const resumed = await migrate({ client, dir });
    expect(resumed.applied.map((a) => a.script)).toEqual(['V2__idx.sql', 'V3__later.sql']);
  });

  it('forgets a no-transaction migration whose first statement failed: nothing ran', async () => {
    const { client, dir } = await setup({ 'V1__x.sql': '-- safeshift:no-transaction\nselect 1/0;\nselect 1;' });
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e).toMatchObject({ code: 'MIGRATION_FAILED', outcome: 'rolled-back' });
    expect(await history(client)).toEqual([]);
  });

  it('rolls back a TypeScript migration that throws and names its file and line', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__backfill.ts':
        "export async function up({ client }) {\n  await client.query('insert into a values (1)');\n  throw new Error('backfill found bad rows');\n}\n",
    });
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e).toMatchObject({ code: 'MIGRATION_FAILED', outcome: 'rolled-back' });
    expect(e.location).toMatchObject({ file: 'V2__backfill.ts', line: 3 });
    expect(e.message).toContain('backfill found bad rows');
    expect((await client.query<{ n: number }>('select count(*)::int as n from a')).rows[0]?.n).toBe(0);
    expect((await history(client)).map((r) => r.script)).toEqual(['V1__a.sql']);
  });

  it('fails with LOCK_TIMEOUT after bounded retries when another session holds the table, changing nothing', async () => {
    const { client, dir, url } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': '-- safeshift:lock-timeout 100ms\nalter table a add column b int;',
    });
    await migrate({ client, dir, target: requireVersion('1', 't') });
    const blocker = await connectPg(url);
    onCleanup(() => blocker.end());
    await blocker.query('begin; lock table a in access exclusive mode');
    const before = await history(client);
    const e = (await migrate({ client, dir, lockRetries: 2, lockRetryDelayMs: 20 }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('LOCK_TIMEOUT');
    expect(e.details.sqlState).toBe('55P03');
    expect(e.message).toContain('3 attempts');
    await blocker.query('rollback');
    expect(await history(client)).toEqual(before);
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from information_schema.columns where table_name = 'a'`);
    expect(rows[0]?.n).toBe(1);
  });

  it('retries a lock timeout with backoff and succeeds when the lock goes away', async () => {
    const { client, dir, url } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': '-- safeshift:lock-timeout 50ms\nalter table a add column b int;',
    });
    await migrate({ client, dir, target: requireVersion('1', 't') });
    const blocker = await connectPg(url);
    onCleanup(() => blocker.end());
    await blocker.query('begin; lock table a in access exclusive mode');
    setTimeout(() => {
      blocker.query('rollback').catch(() => undefined);
    }, 150);
    const result = await migrate({ client, dir, lockRetries: 10, lockRetryDelayMs: 50 });
    expect(result.applied[0]?.lockRetries).toBeGreaterThan(0);
    expect(result.applied.map((a) => a.script)).toEqual(['V2__b.sql']);
  });

  it('lets two concurrent runners apply each migration exactly once', async () => {
    const files: Record<string, string> = {};
    for (let i = 1; i <= 15; i++) files[`V${i}__t${i}.sql`] = `create table t${i} (id int);\nselect pg_sleep(0.01);`;
    const { client, dir, url } = await setup(files);
    const other = await connectPg(url);
    onCleanup(() => other.end());
    const [a, b] = await Promise.all([migrate({ client, dir }), migrate({ client: other, dir })]);
    expect(a.applied.length + b.applied.length).toBe(15);
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, 15]);
    const rows = await history(client);
    expect(rows.length).toBe(15);
    expect(new Set(rows.map((r) => r.version)).size).toBe(15);
  });

  it('fails with LOCKED, naming the holder, when another run keeps the lock past --lock-wait', async () => {
    const { client, dir, url } = await setup({ 'V1__a.sql': 'create table a (id int);' });
    const holder = await connectPg(url, { applicationName: 'other-runner' });
    onCleanup(() => holder.end());
    const { acquireMigrationLock } = await import('../src/core/advisory-lock.ts');
    const release = await acquireMigrationLock(holder, DEFAULT_HISTORY);
    const e = (await migrate({ client, dir, lockWaitMs: 300 }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain('other-runner');
    expect(await tables(client)).toEqual([]);
    await release();
    expect((await migrate({ client, dir })).applied).toHaveLength(1);
  });

  it('quotes a history schema and table whose names contain quotes and SQL', async () => {
    const { client, dir } = await setup({ 'V1__a.sql': 'create table a (id int);' });
    const location = { schema: 'we"ird schema', table: 'hist"; drop table a; --' };
    const result = await migrate({ client, dir, history: location });
    expect(result.applied).toHaveLength(1);
    const { rows } = await client.query(
      `select schemaname, tablename from pg_tables where tablename <> 'a' and schemaname not in ('pg_catalog', 'information_schema')`,
    );
    expect(rows).toEqual([{ schemaname: 'we"ird schema', tablename: 'hist"; drop table a; --' }]);
    expect(await new HistoryTable(client, location).read()).toHaveLength(1);
    expect((await migrate({ client, dir, history: location })).applied).toEqual([]);
  });
});
