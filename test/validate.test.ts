import { describe, expect, it } from 'vitest';
import { scenario } from './support/scenario.ts';
import { ValidationError } from '../src/core/errors.ts';
import { info } from '../src/core/info.ts';
import { migrate } from '../src/core/migrate.ts';
import { validate } from '../src/core/validate.ts';
import { databaseFingerprint } from './support/fingerprint.ts';

const { setup } = scenario();
async function applied(files: Record<string, string>) {
  const s = await setup(files);
  await migrate({ client: s.client, dir: s.dir });
  return s;
}

describe('validate', () => {
  it('passes a folder that matches its history', async () => {
    const { client, dir } = await applied({ 'V1__a.sql': 'create table a (id int);' });
    expect(await validate({ client, dir })).toEqual({ ok: true, problems: [], applied: 1, pending: 0 });
  });

  it('reports every problem in one report and changes nothing', async () => {
    const { client, dir, put, remove } = await applied({
      'V1__a.sql': 'create table a (id int);',
      'V2__b.sql': 'create table b (id int);',
      'V5__e.sql': 'create table e (id int);',
    });
    await put('V1__a.sql', 'create table a (id bigint);'); // an applied file edited
    await remove('V2__b.sql'); // an applied file deleted
    await put('V3__c.sql', 'create table c (id int);'); // pending below the applied maximum
    await put('V6__x.sql', 'select 1;'); // a duplicate version...
    await put('V6.0__y.sql', 'select 1;'); // ...written another way
    await put('add_users.sql', 'select 1;'); // a name that does not parse
    await put('V7__broken.sql', 'create tabel x ();'); // a syntax error in a pending file
    const before = await databaseFingerprint(client);
    const report = await validate({ client, dir });
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => `${p.code} ${p.file}`).sort()).toEqual([
      'BAD_MIGRATION_NAME add_users.sql',
      'CHECKSUM_MISMATCH V1__a.sql',
      'DUPLICATE_VERSION V6__x.sql',
      'MISSING_MIGRATION V2__b.sql',
      'OUT_OF_ORDER V3__c.sql',
      'SYNTAX_ERROR V7__broken.sql',
    ]);
    expect(report.problems.find((p) => p.code === 'SYNTAX_ERROR')).toMatchObject({ line: 1, column: 8 });
    expect(await databaseFingerprint(client)).toEqual(before);

    // migrate refuses with the same report, and still changes nothing.
    const e = (await migrate({ client, dir }).catch((x: unknown) => x)) as ValidationError;
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.code).toBe('VALIDATION_FAILED');
    expect(e.problems.length).toBe(6);
    expect(await databaseFingerprint(client)).toEqual(before);

    const listing = await info({ client, dir });
    const states = Object.fromEntries(listing.migrations.map((m) => [m.script, m.state]));
    expect(states).toMatchObject({ 'V1__a.sql': 'changed', 'V2__b.sql': 'missing', 'V5__e.sql': 'applied', 'V3__c.sql': 'out-of-order' });
  });

  it('accepts a pending version below the applied maximum with --out-of-order', async () => {
    const { client, dir, put } = await applied({ 'V1__a.sql': 'create table a (id int);', 'V3__c.sql': 'create table c (id int);' });
    await put('V2__b.sql', 'create table b (id int);');
    expect((await validate({ client, dir })).problems.map((p) => p.code)).toEqual(['OUT_OF_ORDER']);
    expect((await validate({ client, dir, outOfOrder: true })).ok).toBe(true);
    const result = await migrate({ client, dir, outOfOrder: true });
    expect(result.applied.map((a) => a.script)).toEqual(['V2__b.sql']);
  });

  it('reads a database without history without creating anything', async () => {
    const { client, dir } = await setup({ 'V1__a.sql': 'create table a (id int);' });
    const before = await databaseFingerprint(client);
    expect(await validate({ client, dir })).toMatchObject({ ok: true, pending: 1 });
    expect((await info({ client, dir })).migrations.map((x) => x.state)).toEqual(['pending']);
    expect(await databaseFingerprint(client)).toEqual(before);
  });
});
