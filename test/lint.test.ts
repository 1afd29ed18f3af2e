import { afterEach, describe, expect, it } from 'vitest';
import { checksum } from '../src/core/checksum.ts';
import { parseDirectives } from '../src/core/directives.ts';
import { discoverMigrations, type MigrationFile } from '../src/core/discover.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { LINT_RULES, lintMigrations, type LintOptions } from '../src/core/lint/index.ts';
import { parseVersion } from '../src/core/version.ts';
import { migrationsDir } from './support/migrations-dir.ts';

/** A MigrationFile as discovery would build it, without touching the disk. */
function migration(script: string, text: string): MigrationFile {
  const name = /^(?:V([\d._]+)|R)__(.+)\.(sql|ts|js)$/.exec(script);
  if (!name) throw new Error(`bad test migration name ${script}`);
  const { directives } = parseDirectives(text, script);
  const version = name[1] === undefined ? undefined : parseVersion(name[1]);
  return {
    kind: version ? 'versioned' : 'repeatable',
    ...(version ? { version } : {}),
    description: (name[2] ?? '').replace(/_/g, ' '),
    script,
    absolutePath: `/migrations/${script}`,
    language: (name[3] ?? 'sql') as MigrationFile['language'],
    text,
    checksum: checksum(text),
    directives,
  };
}

/** The schema the cases change: already applied, so it feeds the model and is never reported. */
const BASE = migration(
  'V1__base.sql',
  `
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL,
  status text NOT NULL DEFAULT 'new',
  note text,
  total numeric
);
`,
);

/** Lints `sql` as V2 on top of the applied base schema. */
async function lint(sql: string, options: LintOptions = {}) {
  return lintMigrations([BASE, migration('V2__change.sql', sql)], { applied: new Set([BASE.script]), ...options });
}

/** What a case expects: rule, line and column of each finding, in order. */
type Where = [rule: string, line: number, column: number];

async function where(sql: string, options: LintOptions = {}): Promise<Where[]> {
  const { findings } = await lint(sql, options);
  return findings.map((f) => [f.rule, f.line, f.column]);
}

interface Case {
  readonly name: string;
  readonly sql: string;
  readonly options?: LintOptions;
  readonly expected: Where[];
}

const CONTRACT = '-- safeshift:phase contract\n';
const NO_TX = '-- safeshift:no-transaction\n';

/** For each rule: SQL that triggers it (with where), and close cousins that must not. */
const CASES: Record<string, Case[]> = {
  'drop-table': [
    { name: 'drops an existing table', sql: '-- retire orders\nDROP TABLE orders;', expected: [['drop-table', 2, 1]] },
    {
      name: 'reports each existing table of a list',
      sql: 'DROP TABLE IF EXISTS orders, public.customers;',
      expected: [
        ['drop-table', 1, 1],
        ['drop-table', 1, 1],
      ],
    },
    { name: 'not: a table created in the same file', sql: 'CREATE TABLE scratch (id int);\nDROP TABLE scratch;', expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}DROP TABLE orders;`, expected: [] },
    { name: 'not: dropping a view', sql: 'DROP VIEW order_totals;', expected: [] },
  ],
  'drop-column': [
    { name: 'points at the DROP COLUMN command', sql: 'ALTER TABLE orders\n  ADD COLUMN memo text,\n  DROP COLUMN note;', expected: [['drop-column', 3, 3]] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders DROP COLUMN note;`, expected: [] },
    { name: 'not: a table created in the same file', sql: 'CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;', expected: [] },
  ],
  'rename-table': [
    { name: 'renames an existing table', sql: 'SELECT 1;\nALTER TABLE orders RENAME TO purchases;', expected: [['rename-table', 2, 1]] },
    { name: 'moves it to another schema', sql: 'ALTER TABLE orders SET SCHEMA archive;', expected: [['rename-table', 1, 1]] },
    { name: 'not: a table created in the same file', sql: 'CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;\nCREATE INDEX ON u (a);', expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders RENAME TO purchases;`, expected: [] },
  ],
  'rename-column': [
    { name: 'renames a column of an existing table', sql: '\n\nALTER TABLE orders RENAME COLUMN note TO memo;', expected: [['rename-column', 3, 1]] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders RENAME COLUMN note TO memo;`, expected: [] },
    { name: 'not: renaming an index', sql: 'ALTER INDEX orders_pkey RENAME TO orders_pk;', expected: [] },
  ],
  'alter-column-type': [
    {
      name: 'points at ALTER COLUMN … TYPE',
      sql: 'ALTER TABLE orders ADD COLUMN memo text, ALTER COLUMN total TYPE numeric(12, 2);',
      expected: [['alter-column-type', 1, 42]],
    },
    { name: 'not: a table created in the same file', sql: 'CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;', expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);`, expected: [] },
  ],
  'set-not-null': [
    { name: 'SET NOT NULL on a nullable column', sql: 'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;', expected: [['set-not-null', 1, 20]] },
    { name: 'Postgres 18 ADD CONSTRAINT … NOT NULL', sql: 'ALTER TABLE orders ADD CONSTRAINT note_nn NOT NULL note;', expected: [['set-not-null', 1, 20]] },
    { name: 'not: a column already NOT NULL', sql: 'ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;', expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders ALTER COLUMN note SET NOT NULL;`, expected: [] },
  ],
  'add-column-not-null-without-default': [
    {
      name: 'NOT NULL and no default',
      sql: 'ALTER TABLE orders ADD COLUMN channel text NOT NULL;',
      expected: [['add-column-not-null-without-default', 1, 20]],
    },
    {
      name: 'DEFAULT NULL is no default',
      sql: 'ALTER TABLE orders ADD COLUMN channel text NOT NULL DEFAULT NULL;',
      expected: [['add-column-not-null-without-default', 1, 20]],
    },
    { name: 'not: with a constant default', sql: "ALTER TABLE orders ADD COLUMN channel text NOT NULL DEFAULT 'web';", expected: [] },
    { name: 'not: nullable', sql: 'ALTER TABLE orders ADD COLUMN channel text;', expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders ADD COLUMN channel text NOT NULL;`, expected: [] },
  ],
  'drop-default-on-not-null': [
    { name: 'a NOT NULL column from the model', sql: 'ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;', expected: [['drop-default-on-not-null', 1, 20]] },
    {
      name: 'a column made NOT NULL earlier in the same statement',
      sql: "ALTER TABLE orders\n  ADD COLUMN channel text NOT NULL DEFAULT 'web',\n  ALTER COLUMN channel DROP DEFAULT;",
      expected: [['drop-default-on-not-null', 3, 3]],
    },
    { name: 'not: a nullable column', sql: 'ALTER TABLE orders ALTER COLUMN note DROP DEFAULT;', expected: [] },
    { name: 'not: SET DEFAULT', sql: "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'open';", expected: [] },
    { name: 'not: in a contract migration', sql: `${CONTRACT}ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;`, expected: [] },
  ],
  'concurrently-in-transaction': [
    {
      name: 'CREATE INDEX CONCURRENTLY',
      sql: 'CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);',
      expected: [['concurrently-in-transaction', 1, 1]],
    },
    {
      name: 'even on a new table, even in contract',
      sql: `${CONTRACT}CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY ON t (a);`,
      expected: [['concurrently-in-transaction', 3, 1]],
    },
    { name: 'DROP INDEX CONCURRENTLY', sql: 'DROP INDEX CONCURRENTLY orders_note_idx;', expected: [['concurrently-in-transaction', 1, 1]] },
    { name: 'REINDEX (CONCURRENTLY)', sql: 'REINDEX (CONCURRENTLY) TABLE orders;', expected: [['concurrently-in-transaction', 1, 1]] },
    { name: 'VACUUM', sql: 'VACUUM orders;', expected: [['concurrently-in-transaction', 1, 1]] },
    { name: 'ALTER SYSTEM', sql: "ALTER SYSTEM SET work_mem = '64MB';", expected: [['concurrently-in-transaction', 1, 1]] },
    {
      name: 'DETACH PARTITION … CONCURRENTLY',
      sql: 'ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;',
      expected: [['concurrently-in-transaction', 1, 20]],
    },
    { name: 'not: with -- safeshift:no-transaction', sql: `${NO_TX}CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);`, expected: [] },
    { name: 'not: ANALYZE', sql: 'ANALYZE orders;', expected: [] },
    { name: 'not: REINDEX (CONCURRENTLY false)', sql: 'REINDEX (CONCURRENTLY false) INDEX orders_pkey;', expected: [] },
  ],
  'transaction-control': [
    { name: 'ROLLBACK', sql: 'INSERT INTO orders (customer_id) VALUES (1);\n  ROLLBACK;', expected: [['transaction-control', 2, 3]] },
    { name: 'COMMIT in the middle of the file', sql: 'SELECT 1;\nCOMMIT;\nSELECT 1/0;', expected: [['transaction-control', 2, 1]] },
    {
      name: 'SAVEPOINT and ROLLBACK TO',
      sql: 'SAVEPOINT s;\nROLLBACK TO SAVEPOINT s;',
      expected: [
        ['transaction-control', 1, 1],
        ['transaction-control', 2, 1],
      ],
    },
    { name: 'PREPARE TRANSACTION, even in contract', sql: `${CONTRACT}PREPARE TRANSACTION 'x';`, expected: [['transaction-control', 2, 1]] },
    {
      name: 'BEGIN … COMMIT with -- safeshift:no-transaction',
      sql: `${NO_TX}BEGIN;\nSELECT 1;\nEND;`,
      expected: [
        ['transaction-control', 2, 1],
        ['transaction-control', 4, 1],
      ],
    },
    { name: 'an allow does not acknowledge it', sql: '-- safeshift:allow transaction-control on purpose\nCOMMIT;', expected: [['transaction-control', 2, 1]] },
    { name: 'not: SET TRANSACTION', sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;', expected: [] },
    { name: 'not: COMMIT inside a DO block', sql: `${NO_TX}DO $$ BEGIN COMMIT; END $$;`, expected: [] },
  ],
  'create-index-not-concurrently': [
    {
      name: 'CREATE INDEX on an existing table',
      sql: '-- speed up lookups\nCREATE INDEX orders_note_idx ON orders (note);',
      expected: [['create-index-not-concurrently', 2, 1]],
    },
    {
      name: 'ADD CONSTRAINT … UNIQUE builds an index',
      sql: 'ALTER TABLE orders ADD CONSTRAINT orders_note_key UNIQUE (note);',
      expected: [['create-index-not-concurrently', 1, 20]],
    },
    {
      name: 'UNIQUE on an added column points at UNIQUE',
      sql: 'ALTER TABLE orders ADD COLUMN code text UNIQUE;',
      expected: [['create-index-not-concurrently', 1, 41]],
    },
    { name: 'not: on a table created in the same file', sql: 'CREATE TABLE t (a int);\nCREATE INDEX t_a_idx ON t (a);', expected: [] },
    { name: 'not: CONCURRENTLY in a no-transaction migration', sql: `${NO_TX}CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);`, expected: [] },
    { name: 'not: UNIQUE USING INDEX', sql: 'ALTER TABLE orders ADD CONSTRAINT orders_note_key UNIQUE USING INDEX orders_note_idx;', expected: [] },
  ],
  'foreign-key-without-not-valid': [
    {
      name: 'ADD CONSTRAINT … FOREIGN KEY',
      sql: 'ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);',
      expected: [['foreign-key-without-not-valid', 1, 20]],
    },
    {
      name: 'REFERENCES on an added column points at REFERENCES',
      sql: 'ALTER TABLE orders ADD COLUMN payer_id bigint REFERENCES customers (id);',
      expected: [['foreign-key-without-not-valid', 1, 47]],
    },
    {
      name: 'not: NOT VALID, then VALIDATE',
      sql:
        'ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n' +
        'ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;',
      expected: [],
    },
    {
      name: 'not: on a table created in the same file',
      sql: 'CREATE TABLE t (c bigint);\nALTER TABLE t ADD FOREIGN KEY (c) REFERENCES customers (id);',
      expected: [],
    },
  ],
  'check-without-not-valid': [
    {
      name: 'ADD CONSTRAINT … CHECK',
      sql: 'ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0);',
      expected: [['check-without-not-valid', 1, 20]],
    },
    { name: 'not: NOT VALID', sql: 'ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID;', expected: [] },
    { name: 'not: on a table created in the same file', sql: 'CREATE TABLE t (a int);\nALTER TABLE t ADD CHECK (a > 0);', expected: [] },
  ],
  'volatile-default': [
    {
      name: 'gen_random_uuid() points at the call',
      sql: 'ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();',
      expected: [['volatile-default', 1, 50]],
    },
    {
      name: 'nested in an expression',
      sql: "ALTER TABLE orders ADD COLUMN due timestamptz DEFAULT clock_timestamp() + interval '1 day';",
      expected: [['volatile-default', 1, 55]],
    },
    { name: 'a bigserial column points at the type', sql: 'ALTER TABLE orders ADD COLUMN seq bigserial;', expected: [['volatile-default', 1, 35]] },
    { name: 'not: now()', sql: 'ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();', expected: [] },
    { name: 'not: current_timestamp', sql: 'ALTER TABLE orders ADD COLUMN created_at timestamptz DEFAULT current_timestamp;', expected: [] },
    { name: 'not: SET DEFAULT (new rows only)', sql: 'ALTER TABLE orders ALTER COLUMN note SET DEFAULT gen_random_uuid()::text;', expected: [] },
    { name: 'not: a table created in the same file', sql: 'CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();', expected: [] },
  ],
  'missing-lock-timeout': [
    {
      name: 'lock-timeout 0 directive',
      sql: '-- safeshift:lock-timeout 0\nALTER TABLE orders ADD COLUMN memo text;',
      expected: [['missing-lock-timeout', 2, 20]],
    },
    {
      name: 'SET lock_timeout = 0 affects the statements after it',
      sql: 'ALTER TABLE orders ADD COLUMN memo text;\nSET lock_timeout = 0;\nLOCK TABLE orders IN SHARE MODE;',
      expected: [['missing-lock-timeout', 3, 1]],
    },
    { name: "the run's default is 0", sql: 'TRUNCATE orders;', options: { defaultLockTimeoutMs: 0 }, expected: [['missing-lock-timeout', 1, 1]] },
    {
      name: 'RESET puts the server default back',
      sql:
        "SET lock_timeout = '0';\nSET lock_timeout = '2s';\nRESET lock_timeout;\n" +
        'CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f();',
      expected: [['missing-lock-timeout', 4, 1]],
    },
    { name: 'not: the default timeout is in force', sql: 'ALTER TABLE orders ADD COLUMN memo text;', expected: [] },
    {
      name: 'not: a directive overrides a 0 default',
      sql: '-- safeshift:lock-timeout 3s\nALTER TABLE orders ADD COLUMN memo text;',
      options: { defaultLockTimeoutMs: 0 },
      expected: [],
    },
    {
      name: 'not: SET lock_timeout back to a value',
      sql: "SET lock_timeout = 0;\nSET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN memo text;",
      expected: [],
    },
    {
      name: 'not: a table created in the same file',
      sql: '-- safeshift:lock-timeout 0\nCREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;',
      expected: [],
    },
    {
      name: 'not: a lock that lets writes through',
      sql: `${NO_TX}-- safeshift:lock-timeout 0\nCREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);\nALTER TABLE orders VALIDATE CONSTRAINT c;`,
      expected: [],
    },
  ],
};

describe('lint rules', () => {
  it('has a table of cases for every rule that checks statements', () => {
    const statementRules = LINT_RULES.map((r) => r.name).filter((n) => n !== 'unknown-rule');
    expect(Object.keys(CASES).sort()).toEqual(statementRules.sort());
  });

  for (const [rule, cases] of Object.entries(CASES)) {
    describe(rule, () => {
      for (const c of cases) {
        it(c.name, async () => {
          expect(await where(c.sql, c.options)).toEqual(c.expected);
        });
      }
    });
  }
});

describe('findings', () => {
  it('name the file, version, statement and rule severity, and shorten the statement', async () => {
    const long = `ALTER TABLE orders DROP COLUMN note, ${Array.from({ length: 20 }, (_, i) => `ADD COLUMN c${i} text`).join(', ')};`;
    const report = await lint(`SELECT 1;\n${long}`);
    const [finding] = report.findings;
    expect(finding).toMatchObject({
      rule: 'drop-column',
      severity: 'error',
      file: 'V2__change.sql',
      version: '2',
      line: 2,
      column: 20,
      statementIndex: 1,
    });
    expect(finding?.sql.startsWith('ALTER TABLE orders DROP COLUMN note, ADD COLUMN c0 text')).toBe(true);
    expect(finding?.sql.length).toBeLessThanOrEqual(120);
    expect(finding?.sql.endsWith('…')).toBe(true);
    expect(report).toMatchObject({ errors: 1, warnings: 0 });
  });

  it('say why it is dangerous and give a concrete fix', async () => {
    const messages = async (sql: string) => (await lint(sql)).findings[0];
    const drop = await messages('ALTER TABLE orders DROP COLUMN note;');
    expect(drop?.message).toMatch(/still running/);
    expect(drop?.fix).toContain('`-- safeshift:phase contract`');
    expect(drop?.fix).toContain('`-- safeshift:allow drop-column <reason>`');
    const index = await messages('CREATE INDEX ON orders (note);');
    expect(index?.message).toMatch(/SHARE lock/);
    expect(index?.fix).toContain('CREATE INDEX CONCURRENTLY in a migration with `-- safeshift:no-transaction`');
    const notNull = await messages('ALTER TABLE orders ALTER COLUMN note SET NOT NULL;');
    expect(notNull?.fix).toContain('CHECK (note IS NOT NULL) NOT VALID');
    expect(notNull?.fix).toContain('VALIDATE CONSTRAINT');
    expect(notNull?.fix).toContain('ALTER COLUMN note SET NOT NULL');
    const concurrently = await messages('CREATE INDEX CONCURRENTLY ON orders (note);');
    expect(`${concurrently?.message} ${concurrently?.fix}`).toContain('-- safeshift:no-transaction');
    const timeout = await messages('SET lock_timeout = 0;\nALTER TABLE orders ADD COLUMN memo text;');
    expect(timeout?.message).toContain('ACCESS EXCLUSIVE lock on orders');
    expect(timeout?.message).toContain('line 1');
  });

  it('count columns in characters when a non-ASCII comment or name comes before the clause', async () => {
    const sql = '-- Größe ändern 🚀\nALTER TABLE "Bestellungen_ä" /* ü */ ADD COLUMN a text, /* é */ DROP COLUMN "Größe";';
    const { findings } = await lint(sql);
    const line = sql.split('\n')[1] ?? '';
    expect(findings.map((f) => [f.rule, f.line, f.column])).toEqual([['drop-column', 2, line.indexOf('DROP') + 1]]);
    expect(line.indexOf('DROP') + 1).toBe(65); // 68 if bytes were counted
  });

  it('point at the statement when the clause has no position of its own, across many lines', async () => {
    const sql = ['-- one', '', 'CREATE TABLE t (a int);', '', '/* a block', '   comment */', '  DROP TABLE', '    orders;'].join('\n');
    expect(await where(sql)).toEqual([['drop-table', 7, 3]]);
  });
});

describe('allow directives', () => {
  it('in the leading comments acknowledge every finding of the rule in the file', async () => {
    const report = await lint(
      '-- safeshift:allow drop-column the columns moved to order_notes in v41\n' +
        'ALTER TABLE orders DROP COLUMN note;\nALTER TABLE orders DROP COLUMN total;\nDROP TABLE customers;',
    );
    expect(report.findings.map((f) => [f.rule, f.allowed?.reason])).toEqual([
      ['drop-column', 'the columns moved to order_notes in v41'],
      ['drop-column', 'the columns moved to order_notes in v41'],
      ['drop-table', undefined],
    ]);
    expect(report).toMatchObject({ errors: 1, warnings: 0 });
  });

  it('elsewhere acknowledge the first statement after them only', async () => {
    const report = await lint(
      'SELECT 1;\nALTER TABLE orders DROP COLUMN note;\n' +
        '-- safeshift:allow drop-column nothing reads total since v12\n\nALTER TABLE orders DROP COLUMN total;\nALTER TABLE customers DROP COLUMN name;',
    );
    expect(report.findings.map((f) => [f.line, f.allowed?.reason])).toEqual([
      [2, undefined],
      [5, 'nothing reads total since v12'],
      [6, undefined],
    ]);
    expect(report.errors).toBe(2);
  });

  it('inside a statement acknowledge that statement', async () => {
    const report = await lint(
      'SELECT 1;\nCREATE INDEX orders_note_idx\n  -- safeshift:allow create-index-not-concurrently orders has 40 rows\n' +
        '  ON orders (note);\nCREATE INDEX ON customers (name);',
    );
    expect(report.findings.map((f) => [f.line, f.allowed?.reason])).toEqual([
      [2, 'orders has 40 rows'],
      [5, undefined],
    ]);
    expect(report).toMatchObject({ errors: 0, warnings: 1 });
  });

  it('acknowledge only the rule they name', async () => {
    const report = await lint('SELECT 1;\n-- safeshift:allow drop-column wrong rule\nALTER TABLE orders ALTER COLUMN note SET NOT NULL;');
    expect(report.findings.map((f) => [f.rule, f.allowed])).toEqual([['set-not-null', undefined]]);
  });

  it('need a reason: without one there is no allow (directives.ts reports it) and the finding stands', async () => {
    const text = '-- safeshift:allow drop-table\nDROP TABLE orders;';
    expect(parseDirectives(text, 'V2__change.sql').problems.map((p) => p.code)).toEqual(['BAD_DIRECTIVE']);
    const report = await lint(text);
    expect(report.findings.map((f) => [f.rule, f.allowed])).toEqual([['drop-table', undefined]]);
    expect(report.errors).toBe(1);
  });

  it('never acknowledge transaction-control, which preflight refuses whatever they say', async () => {
    const report = await lint('-- safeshift:allow transaction-control the whole file\nSELECT 1;\n-- safeshift:allow transaction-control this one\nROLLBACK;');
    expect(report.findings.map((f) => [f.rule, f.line, f.allowed])).toEqual([['transaction-control', 4, undefined]]);
    expect(report.findings[0]?.fix).toContain('cannot acknowledge this');
    expect(report.errors).toBe(1);
  });

  it('report an unknown rule as an error at the rule name, with a suggestion', async () => {
    const report = await lint('SELECT 1;\n  -- safeshift:allow drop-colum typo here\nALTER TABLE orders DROP COLUMN note;');
    expect(report.findings.map((f) => [f.rule, f.severity, f.line, f.column, f.allowed])).toEqual([
      ['unknown-rule', 'error', 2, 22, undefined],
      ['drop-column', 'error', 3, 20, undefined],
    ]);
    expect(report.findings[0]?.message).toContain('did you mean drop-column?');
    expect(report.findings[0]?.statementIndex).toBe(1);
    expect(report.errors).toBe(2);
  });
});

describe('lintMigrations', () => {
  it('models every file in order but reports only the pending ones', async () => {
    const files = [
      BASE,
      migration('V2__old.sql', 'ALTER TABLE orders DROP COLUMN total;\nCREATE TABLE refunds (id int, order_id bigint NOT NULL DEFAULT 0);'),
      migration('V3__new.sql', 'CREATE INDEX ON refunds (order_id);\nALTER TABLE refunds ALTER COLUMN order_id DROP DEFAULT;'),
    ];
    const report = await lintMigrations(files, { applied: new Set(['V1__base.sql', 'V2__old.sql']) });
    expect(report.findings.map((f) => [f.file, f.rule, f.line])).toEqual([
      ['V3__new.sql', 'create-index-not-concurrently', 1],
      ['V3__new.sql', 'drop-default-on-not-null', 2],
    ]);
  });

  it('does not exempt a table created by an earlier pending migration', async () => {
    const report = await lintMigrations([migration('V1__a.sql', 'CREATE TABLE a (id int);'), migration('V2__b.sql', 'CREATE INDEX ON a (id);')]);
    expect(report.findings.map((f) => [f.file, f.rule])).toEqual([['V2__b.sql', 'create-index-not-concurrently']]);
  });

  it('skips .ts and .js migrations', async () => {
    const report = await lintMigrations([BASE, migration('V2__code.ts', 'export async function up(ctx) { await ctx.client.query("DROP TABLE orders"); }')]);
    expect(report).toEqual({ findings: [], errors: 0, warnings: 0 });
  });

  it('lets a SYNTAX_ERROR in a pending migration propagate', async () => {
    const error = await lint('SELECT 1;\nALTER TABLE orders DROPP COLUMN note;').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeshiftError);
    expect((error as SafeshiftError).code).toBe('SYNTAX_ERROR');
    expect((error as SafeshiftError).location).toMatchObject({ file: 'V2__change.sql', line: 2 });
  });

  it('skips an applied migration this parser cannot read', async () => {
    const report = await lintMigrations([migration('V1__old.sql', 'CREATE TABLE a (id int) WITH OIDS;'), migration('V2__b.sql', 'DROP TABLE a;')], {
      applied: new Set(['V1__old.sql']),
    });
    expect(report.findings.map((f) => f.rule)).toEqual(['drop-table']);
  });

  it('works on files found by discoverMigrations, repeatables included', async () => {
    const folder = await migrationsDir({
      'V1__init.sql': 'CREATE TABLE users (id bigint PRIMARY KEY, email text);\nCREATE INDEX ON users (email);',
      'V2__tighten.sql': '-- users must have an email now\nALTER TABLE users ALTER COLUMN email SET NOT NULL;',
      'V3__cleanup.sql': '-- safeshift:phase contract\nALTER TABLE users DROP COLUMN email;',
      'R__view.sql': 'CREATE OR REPLACE VIEW user_ids AS SELECT id FROM users;',
    });
    cleanups.push(folder.cleanup);
    const { migrations } = await discoverMigrations(folder.dir);
    const report = await lintMigrations(migrations);
    expect(report.findings.map((f) => [f.file, f.rule, f.line, f.column])).toEqual([['V2__tighten.sql', 'set-not-null', 2, 19]]);
    expect(report).toMatchObject({ errors: 1, warnings: 0 });
  });
});

describe('LINT_RULES', () => {
  it('lists every rule once, by kebab-case name, with a severity and a summary', () => {
    const names = LINT_RULES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of LINT_RULES) {
      expect(rule.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(['error', 'warning']).toContain(rule.severity);
      expect(rule.summary.length).toBeGreaterThan(10);
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'drop-table',
        'drop-column',
        'rename-table',
        'rename-column',
        'alter-column-type',
        'set-not-null',
        'add-column-not-null-without-default',
        'drop-default-on-not-null',
        'concurrently-in-transaction',
        'create-index-not-concurrently',
        'foreign-key-without-not-valid',
        'check-without-not-valid',
        'volatile-default',
        'missing-lock-timeout',
        'transaction-control',
        'unknown-rule',
      ]),
    );
  });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
