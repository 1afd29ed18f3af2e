import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { dropShop } from '../examples/seed/drop-shop.ts';
import { seedShop } from '../examples/seed/seed-shop.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';

const MIGRATIONS = fileURLToPath(new URL('../examples/migrations', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Roles are cluster-wide and files run in parallel: every test gets its own role and database. */
function shopNames() {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const names = {
    serverUrl: testServerUrl(),
    database: `shop_${tag}`,
    appRole: `shop_app_${tag}`,
    appPassword: randomBytes(12).toString('hex'),
    migrationsDir: MIGRATIONS,
  };
  cleanups.push(() => dropShop(names));
  return names;
}

async function asAdminOn<T>(database: string, fn: (c: import('pg').Client) => Promise<T>): Promise<T> {
  const client = await connectPg(withDatabase(testServerUrl(), database));
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function orderStats(url: string) {
  const client = await connectPg(url);
  try {
    const { rows } = await client.query<{ orders: string; zero: string; customers: string; version: string }>(`select
      (select count(*) from orders) as orders, (select count(*) from orders where amount_cents = 0) as zero,
      (select count(*) from customers) as customers,
      (select max(version) from safeshift_schema_history where success and version is not null) as version`);
    const row = defined(rows[0], 'the stats row');
    return { orders: Number(row.orders), zero: Number(row.zero), customers: Number(row.customers), version: row.version };
  } finally {
    await client.end();
  }
}

describe('seedShop', () => {
  it('creates the shop at version 2 with the rows asked for, 1% of them free, and a working app role', async () => {
    const names = shopNames();
    const lines: string[] = [];
    const seeded = await seedShop({ ...names, customers: 50, orders: 2_000, log: (l) => lines.push(l) });
    expect(seeded.rows).toBe(2_050);
    expect(lines.join('\n')).not.toContain(names.appPassword);
    expect(new URL(seeded.appUrl).username).toBe(names.appRole);

    // Read through the app's own URL: proves it can log in and read.
    const stats = await orderStats(seeded.appUrl);
    expect(stats).toEqual({ orders: 2_000, zero: 20, customers: 50, version: '2' });

    const app = await connectPg(seeded.appUrl);
    try {
      const { rows } = await app.query<{ id: string; status: string }>('insert into orders (customer_id, amount_cents) values (1, 999) returning id, status');
      const inserted = defined(rows[0], 'the inserted order');
      expect(inserted.status).toBe('placed');
      await app.query('update orders set amount_cents = 1000 where id = $1', [inserted.id]);
      await app.query('delete from orders where id = $1', [inserted.id]);
      // Data privileges only: the history is readable, not writable, and the schema is not the app's.
      await app.query('select count(*) from safeshift_schema_history');
      await expect(app.query('delete from safeshift_schema_history')).rejects.toMatchObject({ code: '42501' });
      await expect(app.query('drop table orders')).rejects.toMatchObject({ code: '42501' });

      // A table a later migration creates (as the owner) is usable by the app straight away.
      await asAdminOn(names.database, (admin) => admin.query('create table gift_cards (id bigint generated always as identity primary key, cents int)'));
      await app.query('insert into gift_cards (cents) values (500)');
      expect((await app.query<{ n: number }>('select count(*)::int as n from gift_cards')).rows[0]?.n).toBe(1);
    } finally {
      await app.end();
    }
  });

  it('starts from nothing when run again, and resets an existing role', async () => {
    const names = shopNames();
    await seedShop({ ...names, customers: 10, orders: 100 });
    await asAdminOn('postgres', (admin) => admin.query(`alter role ${escapeIdentifier(names.appRole)} nologin`));
    const again = await seedShop({ ...names, appPassword: 'another-Secret%@:', customers: 5, orders: 300 });
    expect(again.rows).toBe(305);
    expect(await orderStats(again.appUrl)).toMatchObject({ orders: 300, zero: 3, customers: 5 });
  });

  it('seeds the default 100,000 orders in a few seconds', async () => {
    const names = shopNames();
    const began = Date.now();
    const seeded = await seedShop(names);
    const ms = Date.now() - began;
    expect(seeded.rows).toBe(101_000);
    expect(await orderStats(seeded.appUrl)).toMatchObject({ orders: 100_000, zero: 1_000, customers: 1_000 });
    // Generous for a loaded CI machine; typically well under 2 s including the migrations.
    expect(ms).toBeLessThan(10_000);
    console.log(`seedShop: 1,000 customers + 100,000 orders in ${ms} ms`);
  });

  it('refuses bad options before touching the server', async () => {
    const names = { ...shopNames(), serverUrl: 'postgres://nobody@127.0.0.1:1/postgres' };
    await expect(seedShop({ ...names, orders: -1 })).rejects.toThrow(/orders must be a whole number/);
    await expect(seedShop({ ...names, appPassword: '' })).rejects.toThrow(/appPassword/);
    await expect(seedShop({ ...names, database: '' })).rejects.toThrow(/database must not be empty/);
  });
});
