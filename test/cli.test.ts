import { describe, expect, it } from 'vitest';
import { scenario } from './support/scenario.ts';
import { DEFAULT_HISTORY, HistoryTable } from '../src/core/history.ts';
import { runSafeshift } from './support/cli.ts';

const { setup } = scenario();

const STACK_FRAME = /\n\s+at .+:\d+:\d+/;

describe('safeshift command', () => {
  it('answers --help for every verb with what it does and an example', async () => {
    const top = await runSafeshift(['--help']);
    expect(top.code).toBe(0);
    const verbs = ['migrate', 'info', 'validate', 'lint', 'compat', 'baseline', 'repair'];
    for (const verb of verbs) expect(top.stdout).toContain(`  ${verb}`);
    const helps = await Promise.all(verbs.map((v) => runSafeshift([v, '--help'])));
    helps.forEach((h, i) => {
      expect(h.code, verbs[i]).toBe(0);
      expect(h.stdout).toContain(`safeshift ${verbs[i]}:`);
      expect(h.stdout).toContain('Examples:');
      expect(h.stdout).toContain('--json');
    });
  });

  it('refuses an unknown verb or option with exit 2 and no stack trace', async () => {
    const verb = await runSafeshift(['migrat']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toContain('unknown command "migrat"');
    const option = await runSafeshift(['migrate', '--targte', '3']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('BAD_OPTION');
    expect(option.stderr).not.toMatch(STACK_FRAME);
  });

  it('reports a database it cannot reach clearly, exit 2, without the password or a stack trace', async () => {
    const run = await runSafeshift(['info', '--dir', '.', '--database-url', 'postgres://app:s3cret-pw@127.0.0.1:1/app', '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('CONNECTION_FAILED');
    expect(run.stderr + run.stdout).not.toContain('s3cret-pw');
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { code: 'CONNECTION_FAILED' } });
  });

  it('migrates with --json: one JSON document on stdout, progress on stderr', async () => {
    const { url, dir } = await setup({ 'V1__a.sql': 'create table a (id int);', 'V2__b.sql': 'create table b (id int);' });
    const run = await runSafeshift(['migrate', '--dir', dir, '--json'], { DATABASE_URL: url });
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { applied: { script: string }[] };
    expect(doc).toMatchObject({ ok: true, fromVersion: null, toVersion: '2' });
    expect(doc.applied.map((a) => a.script)).toEqual(['V1__a.sql', 'V2__b.sql']);
    expect(run.stderr).toContain('[1/2] V1__a.sql');

    const listing = await runSafeshift(['info', '--dir', dir, '--database-url', url]);
    expect(listing.code).toBe(0);
    expect(listing.stdout).toContain('Schema version: 2');
  });

  it('exits 1 when a migration fails and is rolled back, 2 when validation refuses, 3 when a no-transaction migration stops midway', async () => {
    const failing = await setup({ 'V1__a.sql': 'create table a (id int);\nselect 1/0;' });
    const one = await runSafeshift(['migrate', '--dir', failing.dir, '--database-url', failing.url]);
    expect(one.code).toBe(1);
    expect(one.stderr).toContain('MIGRATION_FAILED');
    expect(one.stderr).toContain('V1__a.sql:2:1');
    expect(one.stderr).toContain('22012');

    const refused = await setup({ 'V1__a.sql': 'select 1;', 'V1.0__b.sql': 'select 1;' });
    const two = await runSafeshift(['validate', '--dir', refused.dir, '--database-url', refused.url]);
    expect(two.code).toBe(2);
    expect(two.stdout).toContain('DUPLICATE_VERSION');

    const partial = await setup({ 'V1__a.sql': '-- safeshift:no-transaction\ncreate table a (id int);\nselect 1/0;' });
    const three = await runSafeshift(['migrate', '--dir', partial.dir, '--database-url', partial.url]);
    expect(three.code).toBe(3);
    expect(three.stderr).toContain('safeshift repair');
  });

  it('compat exits 0 for a compatible app version and 1 with the reason otherwise', async () => {
    const { url, dir } = await setup({
      'V1__a.sql': 'create table a (id int, x int);',
      'V2__drop.sql': '-- safeshift:phase contract\nalter table a drop column x;',
    });
    expect((await runSafeshift(['migrate', '--dir', dir, '--database-url', url])).code).toBe(0);
    const ok = await runSafeshift(['compat', '--app-version', '2', '--database-url', url]);
    expect(ok.code).toBe(0);
    const old = await runSafeshift(['compat', '--app-version', '1', '--database-url', url, '--json']);
    expect(old.code).toBe(1);
    expect(JSON.parse(old.stdout)).toMatchObject({ compatible: false, compatibleFrom: '2' });
  });

  it('runs two migrate processes started at the same moment: each migration applied exactly once', async () => {
    const files: Record<string, string> = {};
    for (let i = 1; i <= 10; i++) files[`V${i}__t${i}.sql`] = `create table t${i} (id int);`;
    const { url, dir, client } = await setup(files);
    const [a, b] = await Promise.all([
      runSafeshift(['migrate', '--dir', dir, '--database-url', url, '--json']),
      runSafeshift(['migrate', '--dir', dir, '--database-url', url, '--json']),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const applied = (run: { stdout: string }) => (JSON.parse(run.stdout) as { applied: unknown[] }).applied.length;
    const counts = [applied(a), applied(b)].sort();
    expect(counts).toEqual([0, 10]);
    const rows = await new HistoryTable(client, DEFAULT_HISTORY).read();
    expect(rows.map((r) => r.version)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  });

  it('takes schema and table names with quotes as names, never as SQL', async () => {
    const { url, dir, client } = await setup({ 'V1__a.sql': 'create table a (id int);' });
    const run = await runSafeshift(['migrate', '--dir', dir, '--database-url', url, '--schema', 'x"; drop table a; --', '--table', "h'ist"]);
    expect(run.code).toBe(0);
    const { rows } = await client.query(`select schemaname, tablename from pg_tables where schemaname not in ('pg_catalog', 'information_schema') order by 1`);
    expect(rows).toEqual([
      { schemaname: 'public', tablename: 'a' },
      { schemaname: 'x"; drop table a; --', tablename: "h'ist" },
    ]);
    const tooLong = await runSafeshift(['info', '--dir', dir, '--database-url', url, '--table', 'x'.repeat(70)]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('63-byte');
  });
});
