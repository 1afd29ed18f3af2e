import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { runCli } from '../src/cli/run-cli.ts';
import { MigrationError, SafeshiftError, ValidationError } from '../src/core/errors.ts';
import { DEFAULT_HISTORY, HistoryTable } from '../src/core/history.ts';
import { migrate } from '../src/core/migrate.ts';
import { validate } from '../src/core/validate.ts';
import type { QueryResult, SqlClient } from '../src/ports.ts';
import { databaseFingerprint } from './support/fingerprint.ts';
import { migrationsDir } from './support/migrations-dir.ts';
import { scenario } from './support/scenario.ts';

const { setup, onCleanup } = scenario();

async function scripts(client: pg.Client): Promise<string[]> {
  return (await new HistoryTable(client, DEFAULT_HISTORY).read()).map((r) => r.script);
}

async function failure(run: Promise<unknown>): Promise<SafeshiftError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeshiftError);
  return error as SafeshiftError;
}

/** The refusal as the ValidationError it must be, to read its problems. */
function validationError(error: SafeshiftError): ValidationError {
  if (!(error instanceof ValidationError)) throw new Error(`expected a ValidationError, got ${error.name}: ${error.message}`);
  return error;
}

/** Runs the CLI in-process, collecting what it prints. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    stdout: (t) => {
      out += `${t}\n`;
    },
    stderr: (t) => {
      err += `${t}\n`;
    },
    env: {},
  });
  return { code, out, err };
}

describe('transaction control inside a SQL migration', () => {
  it('refuses `…; ROLLBACK;` at preflight with TRANSACTION_CONTROL, naming file:line:column, and changes nothing', async () => {
    const { client, dir, put } = await setup({ 'V1__a.sql': 'create table a (id int primary key);' });
    await migrate({ client, dir });
    await put('V2__undo.sql', 'create table b (id int);\ninsert into a values (1);\n  rollback;\n');
    const before = await databaseFingerprint(client);

    const e = await failure(migrate({ client, dir }));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e).toMatchObject({ code: 'TRANSACTION_CONTROL', outcome: 'refused' });
    const [problem, ...others] = validationError(e).problems;
    expect(others).toEqual([]);
    expect(problem).toMatchObject({ code: 'TRANSACTION_CONTROL', file: 'V2__undo.sql', version: '2', statementIndex: 2, line: 3, column: 3 });
    expect(e.message).toContain('V2__undo.sql:3:3');
    expect(e.message).toContain('`rollback`');
    expect(e.message).toContain('safeshift already wraps each migration in its own transaction together with its history row');
    expect(e.message).toContain('-- safeshift:no-transaction');
    expect(await databaseFingerprint(client)).toEqual(before);
    expect(await scripts(client)).toEqual(['V1__a.sql']);
  });

  it('refuses `…; COMMIT; select 1/0;` before anything is committed', async () => {
    const { client, dir } = await setup({
      'V1__half.sql': 'create table a (id int);\ninsert into a values (1);\nCOMMIT;\nselect 1/0;\n',
    });
    const before = await databaseFingerprint(client);
    const e = await failure(migrate({ client, dir }));
    expect(e).toMatchObject({ code: 'TRANSACTION_CONTROL', outcome: 'refused' });
    expect(e.location).toEqual({});
    expect(validationError(e).problems).toMatchObject([{ file: 'V1__half.sql', line: 3, column: 1, statementIndex: 2 }]);
    expect(e.message).toContain('`COMMIT` commits the statements before it');
    expect(e.message).not.toContain('rolled back; the database is as it was');
    expect(await databaseFingerprint(client)).toEqual(before);
    expect(await scripts(client)).toEqual([]);
  });

  it('refuses every kind of transaction control, and a -- safeshift:allow does not change that', async () => {
    const kinds = [
      'begin',
      'start transaction isolation level serializable',
      'commit',
      'end',
      'rollback',
      'abort',
      'savepoint s',
      'release savepoint s',
      'rollback to savepoint s',
      "prepare transaction 'x'",
      "commit prepared 'x'",
      "rollback prepared 'x'",
      'commit and chain',
    ];
    const { client, dir } = await setup({
      'V1__all.sql': `-- safeshift:allow transaction-control we know what we are doing\nselect 1;\n${kinds.join(';\n')};\n`,
    });
    const report = await validate({ client, dir });
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.code, p.line, p.statementIndex])).toEqual(kinds.map((_, i) => ['TRANSACTION_CONTROL', i + 3, i + 1]));
    expect((await failure(migrate({ client, dir }))).code).toBe('TRANSACTION_CONTROL');
    expect(await scripts(client)).toEqual([]);
  });

  it('refuses BEGIN … COMMIT in a no-transaction migration too: it would hold the progress record inside it', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table a (id int);',
      'V2__batch.sql': '-- safeshift:no-transaction\nbegin;\ninsert into a values (1);\ncommit;\n',
    });
    const before = await databaseFingerprint(client);
    const e = await failure(migrate({ client, dir }));
    expect(e.code).toBe('TRANSACTION_CONTROL');
    expect(validationError(e).problems.map((p) => [p.file, p.line])).toEqual([
      ['V2__batch.sql', 2],
      ['V2__batch.sql', 4],
    ]);
    expect(e.message).toContain('no-transaction migration');
    expect(e.message).toContain('belong in a transactional migration of their own');
    expect(await databaseFingerprint(client)).toEqual(before);
  });
});

describe('locating the failing statement of a transactional migration', () => {
  it('names the statement of an error without a position from the server, without running any statement twice', async () => {
    const { client, dir, put } = await setup({ 'V1__a.sql': 'create table a (id int primary key);\ncreate sequence probe;' });
    await migrate({ client, dir });
    // nextval is not undone by the rollback: it counts how often statement 1 ran.
    await put('V2__b.sql', "select nextval('probe');\ninsert into a values (1);\n\ninsert into a\n  values (1);\nselect pg_sleep(0);\n");
    const e = await failure(migrate({ client, dir }));
    expect(e).toBeInstanceOf(MigrationError);
    expect(e).toMatchObject({ code: 'MIGRATION_FAILED', outcome: 'rolled-back' });
    expect(e.location).toMatchObject({ file: 'V2__b.sql', statementIndex: 2, line: 4, column: 1 });
    expect(e.details.sqlState).toBe('23505');
    expect(e.message).toContain('V2__b.sql:4:1: V2__b.sql failed in statement 3 of 4 (SQLSTATE 23505)');
    expect(e.message).toContain('The migration was rolled back');
    expect((await client.query<{ n: number }>('select last_value::int as n from probe')).rows[0]?.n).toBe(1);
    expect((await client.query<{ n: number }>('select count(*)::int as n from a')).rows[0]?.n).toBe(0);
    expect(await scripts(client)).toEqual(['V1__a.sql']);
  });

  it('says a failure at commit happened at commit, after every statement ran, instead of blaming one', async () => {
    const { client, dir } = await setup({
      'V1__a.sql': 'create table p (id int primary key);\ncreate table c (p int references p deferrable initially deferred);',
      'V2__b.sql': 'insert into c values (5);\ninsert into c values (6);\n',
    });
    const e = await failure(migrate({ client, dir }));
    expect(e).toMatchObject({ code: 'MIGRATION_FAILED', outcome: 'rolled-back' });
    expect(e.details.sqlState).toBe('23503');
    expect(e.location.statementIndex).toBeUndefined();
    expect(e.location.line).toBeUndefined();
    expect(e.message).toContain(
      'V2__b.sql failed when its transaction committed (deferred constraints and triggers run then), after all 2 of its statements ran',
    );
    expect(await scripts(client)).toEqual(['V1__a.sql']);
    expect((await client.query<{ n: number }>('select count(*)::int as n from c')).rows[0]?.n).toBe(0);
  });

  it('says honestly that it cannot tell the statement when the client does not report progress', async () => {
    const { client, dir, put } = await setup({ 'V1__a.sql': 'create table a (id int primary key);' });
    await migrate({ client, dir });
    await put('V2__b.sql', 'insert into a values (1);\ninsert into a values (1);\n');
    // A client that passes errors on as the driver made them, without completedStatements.
    const bare: SqlClient = {
      async query<R>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> {
        try {
          const r = await client.query(text, values === undefined ? undefined : [...values]);
          return { rows: r.rows as R[], rowCount: r.rowCount };
        } catch (error) {
          if (error instanceof Error) throw Object.assign(error, { completedStatements: undefined });
          throw error;
        }
      },
    };
    const e = await failure(migrate({ client: bare, dir }));
    expect(e).toMatchObject({ code: 'MIGRATION_FAILED', outcome: 'rolled-back' });
    expect(e.location.statementIndex).toBeUndefined();
    expect(e.message).toContain('safeshift cannot tell in which of its 2 statements');
    expect((await client.query<{ n: number }>('select count(*)::int as n from a')).rows[0]?.n).toBe(0);
  });
});

describe('safeshift lint', () => {
  it('lists transaction-control among its rules and reports it as an error an allow cannot acknowledge', async () => {
    const rules = await cli(['lint', '--rules', '--json']);
    expect(rules.code).toBe(0);
    expect(JSON.parse(rules.out)).toContainEqual(expect.objectContaining({ name: 'transaction-control', severity: 'error' }));

    const folder = await migrationsDir({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': '-- safeshift:allow transaction-control it is fine\ninsert into a values (1);\nrollback;\n',
    });
    onCleanup(folder.cleanup);
    const run = await cli(['lint', '--dir', folder.dir]);
    expect(run.code).toBe(2);
    expect(run.out).toContain('V2__b.sql:3:1 error [transaction-control] `rollback` discards the statements before it');
    expect(run.out).toContain('1 error');
  });
});
