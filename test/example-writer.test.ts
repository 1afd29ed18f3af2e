import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { startShopApi } from '../examples/api/server.ts';
import { startWriter, type Writer, type WriterReport } from '../examples/load/writer.ts';
import { dropShop } from '../examples/seed/drop-shop.ts';
import { seedShop } from '../examples/seed/seed-shop.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';

const MIGRATIONS = fileURLToPath(new URL('../examples/migrations', import.meta.url));
const CUSTOMERS = 50;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A seeded shop (its own database and role: roles are cluster-wide), its API, and a superuser session. */
async function shop() {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const names = { serverUrl: testServerUrl(), database: `shop_${tag}`, appRole: `shop_app_${tag}` };
  cleanups.push(() => dropShop(names));
  const { appUrl } = await seedShop({ ...names, appPassword: randomBytes(12).toString('hex'), migrationsDir: MIGRATIONS, customers: CUSTOMERS, orders: 2_000 });
  const api = await startShopApi({ databaseUrl: appUrl });
  cleanups.push(() => api.close());
  const admin = await connectPg(withDatabase(testServerUrl(), names.database));
  cleanups.push(() => admin.end());
  return { api, admin, role: names.appRole };
}

function writer(apiUrl: string, log: string[]): Writer {
  const w = startWriter({ apiUrl, concurrency: 4, customers: CUSTOMERS, log: (l) => log.push(l) });
  cleanups.push(() => w.stop());
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function maintenance(url: string, mode: 'maintenance' | 'normal') {
  const res = await fetch(url, { method: 'PUT', body: JSON.stringify({ mode }) });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** How many of the ids are in the table: all of them, or an acknowledged write was lost. */
async function present(admin: import('pg').Client, report: WriterReport): Promise<number> {
  const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from orders where id = any($1::bigint[])', [report.acknowledgedIds]);
  return defined(rows[0], 'the count row').n;
}

describe('load writer', () => {
  it('loses no acknowledged write across a maintenance window, and is refused (not failed) inside it', async () => {
    const { api, admin } = await shop();
    const log: string[] = [];
    const w = writer(api.url, log);
    await sleep(600);
    expect(await maintenance(api.maintenanceUrl, 'maintenance')).toEqual({ status: 200, body: { mode: 'maintenance', inFlight: 0 } });
    // Quiet means quiet: nothing is written while in maintenance.
    const before = defined((await admin.query<{ n: number }>('select count(*)::int as n from orders')).rows[0], 'the count row').n;
    await sleep(700);
    expect((await admin.query<{ n: number }>('select count(*)::int as n from orders')).rows[0]?.n).toBe(before);
    expect((await maintenance(api.maintenanceUrl, 'normal')).status).toBe(200);
    await sleep(1_200); // the writers sleep out their Retry-After, then write again
    const report = await w.stop();

    expect(log).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.refused).toBeGreaterThan(0);
    expect(report.acknowledgedIds.length).toBeGreaterThan(20);
    expect(new Set(report.acknowledgedIds).size).toBe(report.acknowledgedIds.length);
    expect(await present(admin, report)).toBe(report.acknowledgedIds.length);
    expect(report.requests).toBe(report.acknowledgedIds.length + report.refused);
    expect(api.stats()).toEqual({ acknowledged: report.acknowledgedIds.length, refused: report.refused });
    // Some writes came after the window: the writer resumed by itself.
    expect(Math.max(...report.acknowledgedIds)).toBeGreaterThan(before);
  });

  it('keeps every acknowledged write while the app role is locked out and let back in', async () => {
    const { api, admin, role } = await shop();
    const w = writer(api.url, []);
    await sleep(400);
    await admin.query(`alter role ${escapeIdentifier(role)} nologin`);
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [role]);
    await sleep(600);
    await admin.query(`alter role ${escapeIdentifier(role)} login`);
    await sleep(1_200);
    const report = await w.stop();
    expect(report.errors).toBe(0);
    expect(report.refused).toBeGreaterThan(0);
    expect(await present(admin, report)).toBe(report.acknowledgedIds.length);
  });

  it('only loads servers on 127.0.0.1', () => {
    expect(() => startWriter({ apiUrl: 'http://example.com:8080' })).toThrow(/127\.0\.0\.1/);
    expect(() => startWriter({ apiUrl: 'https://127.0.0.1:8080' })).toThrow(/127\.0\.0\.1/);
    expect(() => startWriter({ apiUrl: 'http://localhost:8080' })).toThrow(/127\.0\.0\.1/);
    expect(() => startWriter({ apiUrl: 'not a url' })).toThrow(/not a URL/);
    expect(() => startWriter({ apiUrl: 'http://127.0.0.1:1', concurrency: 0 })).toThrow(/concurrency/);
  });

  it('stops by itself after its maximum duration', async () => {
    const log: string[] = [];
    // Nothing listens on port 1: every request fails fast, which is fine for this check.
    const w = startWriter({ apiUrl: 'http://127.0.0.1:1', concurrency: 1, maxDurationMs: 200, log: (l) => log.push(l) });
    await sleep(400);
    const logged = log.length;
    await sleep(300);
    expect(log.length).toBe(logged); // no request since
    expect(log.some((l) => l.includes('stopping by itself'))).toBe(true);
    expect((await w.stop()).errors).toBeGreaterThan(0);
  });
});
