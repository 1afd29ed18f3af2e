import { describe, expect, it } from 'vitest';
import { scenario } from './support/scenario.ts';
import { assertCompatible, checkCompatibility } from '../src/core/compat.ts';
import { migrate } from '../src/core/migrate.ts';
import { requireVersion } from '../src/core/version.ts';

const { setup } = scenario();
const v = (t: string) => requireVersion(t, 'app version');

describe('compatibility record', () => {
  it('keeps compatible_from on expand migrations and raises it on a contract migration', async () => {
    const m = await setup({
      'V1__users.sql': 'create table users (id int, name text);',
      'V2__add_full_name.sql': 'alter table users add column full_name text;',
      'V3__drop_name.sql': '-- safeshift:phase contract\nalter table users drop column name;',
    });
    const client = m.client;

    expect(await checkCompatibility({ client, appVersion: v('1') })).toMatchObject({ compatible: false, schemaVersion: null });

    await migrate({ client, dir: m.dir, target: v('2') });
    expect(await checkCompatibility({ client, appVersion: v('1') })).toMatchObject({ compatible: true, schemaVersion: '2', compatibleFrom: '1' });
    expect(await checkCompatibility({ client, appVersion: v('2') })).toMatchObject({ compatible: true });
    const ahead = await checkCompatibility({ client, appVersion: v('3') });
    expect(ahead.compatible).toBe(false);
    expect(ahead.reason).toContain('migrate the database');

    await migrate({ client, dir: m.dir });
    const old = await checkCompatibility({ client, appVersion: v('2') });
    expect(old).toMatchObject({ compatible: false, schemaVersion: '3', compatibleFrom: '3', raisedBy: 'V3__drop_name.sql' });
    expect(old.reason).toContain('V3__drop_name.sql');
    expect(await checkCompatibility({ client, appVersion: v('3') })).toMatchObject({ compatible: true });

    await expect(assertCompatible({ client, appVersion: v('2') })).rejects.toMatchObject({ code: 'INCOMPATIBLE' });
    await expect(assertCompatible({ client, appVersion: v('3') })).resolves.toMatchObject({ compatible: true });
  });
});
