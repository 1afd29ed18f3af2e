import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEmbeddedServer } from '../src/adapters/local/embedded-postgres.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { runSafeshift } from './support/cli.ts';
import { EXAMPLE_MIGRATIONS } from './support/shop.ts';

/**
 * The embedded PostgreSQL does not invent databases: a workflow verb or a ledger reader that names
 * one that does not exist says so and creates nothing; `--create` starts one on purpose. Runs in a
 * folder of its own, so the CLI's embedded server (`.safeshift/` under the working directory) is its own.
 */
describe('the embedded server and databases that do not exist', () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'safeshift-test-cwd-'));
    await fs.chmod(cwd, 0o755); // the server may run as "postgres" and must enter it
    // Claimed as in use, or another run's global setup sweeps it away as an abandoned test folder.
    await fs.writeFile(path.join(cwd, 'owner.pid'), `${process.pid}\n`);
  });
  afterAll(async () => {
    await runSafeshift(['embedded', 'stop'], {}, cwd);
    await fs.rm(cwd, { recursive: true, force: true });
  });

  it('refuses upgrade, rehearse and the ledger readers on a mistyped name, creating nothing; --create makes it on purpose', async () => {
    const dir = ['--dir', EXAMPLE_MIGRATIONS];
    for (const args of [
      ['upgrade', ...dir, '--database', 'nope_db', '--no-quiesce'],
      ['rehearse', ...dir, '--database', 'nope_db'],
      ['runs', '--database', 'nope_db'],
      ['snapshots', '--database', 'nope_db'],
      ['quiesced', '--database', 'nope_db'],
      ['unlock', '--database', 'nope_db'],
      // The engine's verbs take the same --database as the workflow verbs.
      ['info', ...dir, '--database', 'nope_db'],
      ['validate', ...dir, '--database', 'nope_db'],
    ]) {
      const out = await runSafeshift(args, {}, cwd);
      expect(out.code, `${args[0]}: ${out.stdout}${out.stderr}`).toBe(2);
      expect(out.stdout + out.stderr, args[0]).toContain('DATABASE_NOT_FOUND');
    }
    // The same server the CLI started there (already running: this only reads its address).
    const { url } = await ensureEmbeddedServer({ dataDir: path.join(cwd, '.safeshift', 'pg') });
    const client = await connectPg(url);
    try {
      const made = await client.query(`select datname from pg_database where datname = 'nope_db'`);
      expect(made.rowCount, 'no database was invented').toBe(0);
      const created = await runSafeshift(['upgrade', ...dir, '--database', 'made_on_purpose', '--create', '--no-quiesce', '--no-rehearsal'], {}, cwd);
      expect(created.code, created.stdout + created.stderr).toBe(0);
      expect((await client.query(`select 1 from pg_database where datname = 'made_on_purpose'`)).rowCount).toBe(1);
      // migrate, like Flyway on an empty schema, starts the database it is told to migrate.
      const migrated = await runSafeshift(['migrate', ...dir, '--database', 'made_by_migrate', '--json'], {}, cwd);
      expect(migrated.code, migrated.stdout + migrated.stderr).toBe(0);
      expect(JSON.parse(migrated.stdout)).toMatchObject({ ok: true, toVersion: '3' });
      const info = await runSafeshift(['info', ...dir, '--database', 'made_by_migrate', '--json'], {}, cwd);
      expect(info.code, info.stdout + info.stderr).toBe(0);
      expect(info.stdout).toContain('"3"');
      const both = await runSafeshift(['migrate', ...dir, '--database', 'made_by_migrate', '--database-url', url], {}, cwd);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/BAD_OPTION.*--database goes with the embedded PostgreSQL/);
    } finally {
      await client.end();
    }
  }, 180_000);
});
