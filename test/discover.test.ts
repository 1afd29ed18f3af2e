import { afterEach, describe, expect, it } from 'vitest';
import { discoverMigrations } from '../src/core/discover.ts';
import { migrationsDir } from './support/migrations-dir.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function folder(files: Record<string, string>) {
  const m = await migrationsDir(files);
  cleanups.push(m.cleanup);
  return m.dir;
}

describe('discoverMigrations', () => {
  it('reads Flyway-style names, orders versions as numbers and puts repeatables last', async () => {
    const dir = await folder({
      'V1.10__ten.sql': 'select 1;',
      'V1.9__nine.sql': 'select 1;',
      'V1_2__one_two.sql': 'select 1;',
      'sub/V2__nested.sql': 'select 1;',
      'R__view.sql': 'select 1;',
      'V3__script.ts': 'export async function up() {}',
      'README.md': 'ignored',
      'verify/check.sql': 'select true;',
    });
    const { migrations, problems } = await discoverMigrations(dir);
    expect(problems).toEqual([]);
    expect(migrations.map((m) => m.script)).toEqual([
      'V1_2__one_two.sql',
      'V1.9__nine.sql',
      'V1.10__ten.sql',
      'sub/V2__nested.sql',
      'V3__script.ts',
      'R__view.sql',
    ]);
    expect(migrations[0]?.description).toBe('one two');
    expect(migrations[4]?.language).toBe('ts');
  });

  it('reports every bad name and duplicate version, not just the first', async () => {
    const dir = await folder({
      'V1__a.sql': 'select 1;',
      'V1.0__b.sql': 'select 1;',
      'V2__c.sql': 'select 1;',
      'sub/V2__d.sql': 'select 1;',
      'create_users.sql': 'select 1;',
      'V1a__x.sql': 'select 1;',
      'V3_description.sql': 'select 1;',
      'R__x.ts': '',
    });
    const { problems } = await discoverMigrations(dir);
    const codes = problems.map((p) => `${p.code} ${p.file}`).sort();
    expect(codes).toEqual(
      [
        'BAD_MIGRATION_NAME R__x.ts',
        'BAD_MIGRATION_NAME V1a__x.sql',
        'BAD_MIGRATION_NAME V3_description.sql',
        'BAD_MIGRATION_NAME create_users.sql',
        'DUPLICATE_VERSION V1__a.sql',
        'DUPLICATE_VERSION sub/V2__d.sql',
      ].sort(),
    );
  });

  it('reads directives from the leading comments and reports misplaced or unknown ones', async () => {
    const dir = await folder({
      'V1__a.sql': '-- safeshift:no-transaction\n-- safeshift:phase contract\n-- safeshift:lock-timeout 2s\ncreate index concurrently i on t (a);',
      'V2__b.sql': 'select 1;\n-- safeshift:no-transaction\n',
      'V3__c.sql': '-- safeshift:phase shrink\n-- safeshift:frobnicate\nselect 1;',
    });
    const { migrations, problems } = await discoverMigrations(dir);
    expect(migrations[0]?.directives).toMatchObject({ transaction: false, phase: 'contract', lockTimeoutMs: 2000 });
    expect(problems.map((p) => [p.code, p.file, p.line])).toEqual([
      ['BAD_DIRECTIVE', 'V2__b.sql', 2],
      ['BAD_DIRECTIVE', 'V3__c.sql', 1],
      ['BAD_DIRECTIVE', 'V3__c.sql', 2],
    ]);
  });

  it('fails clearly when the folder does not exist', async () => {
    await expect(discoverMigrations('/nonexistent/migrations')).rejects.toMatchObject({ code: 'MIGRATIONS_DIR_NOT_FOUND' });
  });
});
