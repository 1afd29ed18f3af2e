import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { scenario } from './support/scenario.ts';
import { baseline } from '../src/core/baseline.ts';
import type { SafeshiftError } from '../src/core/errors.ts';
import { flywayChecksum } from '../src/core/flyway-checksum.ts';
import { DEFAULT_HISTORY, HistoryTable } from '../src/core/history.ts';
import { migrate } from '../src/core/migrate.ts';
import { requireVersion } from '../src/core/version.ts';
import { databaseFingerprint } from './support/fingerprint.ts';

const { setup } = scenario();

/** Creates a flyway_schema_history exactly as Flyway 9/10 lays it out. */
async function flywayHistory(client: import('pg').Client, rows: [number, string | null, string, string, string, number | null, boolean][]) {
  await client.query(`create table flyway_schema_history (
    installed_rank integer primary key, version varchar(50), description varchar(200) not null, type varchar(20) not null,
    script varchar(1000) not null, checksum integer, installed_by varchar(100) not null, installed_on timestamp not null default now(),
    execution_time integer not null, success boolean not null)`);
  for (const r of rows) {
    await client.query(`insert into flyway_schema_history values ($1, $2, $3, $4, $5, $6, 'flyway', now(), 12, $7)`, r);
  }
}

describe('baseline', () => {
  it('--version marks an existing database; files up to it never run', async () => {
    const { client, dir } = await setup({
      'V1__old.sql': 'create table old_one (id int);',
      'V2__old.sql': 'create table old_two (id int);',
      'V3__new.sql': 'create table new_one (id int);',
    });
    const result = await baseline({ client, version: requireVersion('2', '--version') });
    expect(result.schemaVersion).toBe('2');
    const run = await migrate({ client, dir });
    expect(run.applied.map((a) => a.script)).toEqual(['V3__new.sql']);
    const e = (await baseline({ client, version: requireVersion('5', '--version') }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('ALREADY_BASELINED');
  });

  it('--from-flyway adopts an existing flyway_schema_history, checking each file', async () => {
    const v1 = 'create table a (id int);\r\ninsert into a values (1);\r\n';
    const v2 = 'create table b (id int);\n';
    const r = 'create or replace view va as select * from a;\n';
    const { client, dir } = await setup({ 'V1__create_a.sql': v1, 'V2__create_b.sql': v2, 'R__va.sql': r, 'V3__create_c.sql': 'create table c (id int);' });
    await client.query(v1 + v2 + r);
    await flywayHistory(client, [
      [1, '1', 'create a', 'SQL', 'V1__create_a.sql', flywayChecksum(v1), true],
      [2, '2', 'create b', 'SQL', 'V2__create_b.sql', flywayChecksum(v2), true],
      [3, null, 'va', 'SQL', 'R__va.sql', 12345, true],
      [4, null, 'va', 'SQL', 'R__va.sql', flywayChecksum(r), true],
    ]);
    const result = await baseline({ client, fromFlyway: { dir } });
    expect(result.recorded.map((x) => x.script)).toEqual(['V1__create_a.sql', 'V2__create_b.sql', 'R__va.sql']);
    expect(result.schemaVersion).toBe('2');
    const run = await migrate({ client, dir });
    expect(run.applied.map((a) => a.script)).toEqual(['V3__create_c.sql']);
  });

  it('refuses to adopt a Flyway history whose files differ or are gone, changing nothing', async () => {
    const { client, dir } = await setup({ 'V1__create_a.sql': 'create table a (id int);\n' });
    await client.query('create table a (id int)');
    await flywayHistory(client, [
      [1, '1', 'create a', 'SQL', 'V1__create_a.sql', flywayChecksum('create table a (id bigint);\n'), true],
      [2, '2', 'create b', 'SQL', 'V2__create_b.sql', 99, true],
    ]);
    const before = await databaseFingerprint(client);
    const e = (await baseline({ client, fromFlyway: { dir } }).catch((x: unknown) => x)) as SafeshiftError;
    expect(e.code).toBe('VALIDATION_FAILED');
    expect(e.message).toContain('CHECKSUM_MISMATCH');
    expect(e.message).toContain('MISSING_MIGRATION');
    expect(await databaseFingerprint(client)).toEqual(before);
    expect(await new HistoryTable(client, DEFAULT_HISTORY).exists()).toBe(false);
  });

  it('says so when there is no Flyway history', async () => {
    const { client, dir } = await setup({ 'V1__a.sql': 'select 1;' });
    await expect(baseline({ client, fromFlyway: { dir } })).rejects.toMatchObject({ code: 'FLYWAY_HISTORY_NOT_FOUND' });
  });
});

describe('flywayChecksum', () => {
  it('is CRC-32 over the lines without their breaks, signed, whatever the line endings', () => {
    const text = 'create table a (id int);\ninsert into a values (1);\n';
    const expected = crc32('create table a (id int);insert into a values (1);') | 0;
    expect(flywayChecksum(text)).toBe(expected);
    expect(flywayChecksum(text.replace(/\n/g, '\r\n'))).toBe(expected);
    expect(flywayChecksum(`\uFEFF${text}`)).toBe(expected);
    expect(flywayChecksum('a\n\n')).toBe(crc32('a') | 0);
  });
});
