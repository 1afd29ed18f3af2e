import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../examples/demo/run-demo.ts';
import { ensureEmbeddedServer, stopEmbeddedServer } from '../src/adapters/local/embedded-postgres.ts';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { silentLogger } from '../src/core/logger.ts';
import type { SnapshotView } from '../src/console-server/backend.ts';
import { LocalConsoleBackend } from '../src/console-server/local-backend.ts';
import { startConsoleServer, type ConsoleServer } from '../src/console-server/server.ts';
import { findChromium, launchChromium } from './support/chromium.ts';
import { defined } from './support/defined.ts';
import { EXAMPLE_MIGRATIONS, productionState } from './support/shop.ts';

/**
 * The console in a real Chromium, after the demo (a successful upgrade to 3 and a rolled-back one to 5):
 * the page shows the runs and snapshots, the Restore button is pressed, the name typed and confirmed,
 * and the database then holds exactly the snapshot's data. The demo uses fixed names (shop_demo), so
 * it runs on a private embedded cluster of this file's own, never beside test/demo.test.ts's.
 * The browser: SAFESHIFT_CHROMIUM (a path, or "bundled"), else /usr/bin/chromium, else the one the
 * @sparticuz/chromium devDependency ships (test/support/chromium.ts); none found fails the file.
 */
// At load, so a missing browser fails the file at once, with what to do, before the demo runs.
const browser = await findChromium();
const ARTIFACTS = path.resolve(import.meta.dirname, '../test-artifacts');
const DATABASE = 'shop_demo';
const APP_ROLE = 'shop_demo_app';

let root: string;
let serverUrl: string;
let backend: LocalConsoleBackend;
let server: ConsoleServer;
let context: BrowserContext;
let page: Page;
/** Every URL the page asked for, and every error its console printed (a CSP violation would show there). */
const requested: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  console.log(`console-browser: ${browser.description}`);
  // The "safeshift-test-" prefix and owner.pid let the global setup reap this cluster if this process dies.
  root = await mkdtemp(path.join(os.tmpdir(), 'safeshift-test-console-'));
  await chmod(root, 0o755);
  await writeFile(path.join(root, 'owner.pid'), `${process.pid}\n`);
  serverUrl = (await ensureEmbeddedServer({ dataDir: path.join(root, 'pg'), settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } }))
    .url;
  const demo = await runDemo(silentLogger, () => {}, { serverUrl });
  expect(demo.asExpected).toBe(true);

  // The demo's HTTP API stopped with the demo, so its maintenance endpoint (recorded in the ledger)
  // no longer answers: the restore stops the app's database role only.
  backend = await LocalConsoleBackend.open({ serverUrl, migrationsDir: EXAMPLE_MIGRATIONS, quiesce: [`db-role:${APP_ROLE}`] });
  server = await startConsoleServer({ backend });
  const userDataDir = await mkdtemp(path.join(root, 'chromium-'));
  context = await launchChromium(browser, userDataDir, { width: 1280, height: 900 });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 240_000);

afterAll(async () => {
  // Each is unset when beforeAll failed before making it.
  await (context as BrowserContext | undefined)?.close();
  await (server as ConsoleServer | undefined)?.close();
  await (backend as LocalConsoleBackend | undefined)?.close();
  if (root) {
    await stopEmbeddedServer({ dataDir: path.join(root, 'pg') }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
});

/** The state a snapshot holds, read from a database made from it (a snapshot is a template database). */
async function stateOfSnapshot(snapshotId: string): Promise<Record<string, unknown>> {
  const copy = `snapcheck_${process.pid}`;
  const admin = await connectPg(serverUrl);
  try {
    await admin.query(`create database ${escapeIdentifier(copy)} template ${escapeIdentifier(snapshotId)}`);
    const client = await connectPg(withDatabase(serverUrl, copy));
    try {
      return await productionState(client);
    } finally {
      await client.end();
    }
  } finally {
    await admin.query(`drop database if exists ${escapeIdentifier(copy)} with (force)`);
    await admin.end();
  }
}

async function productionNow(): Promise<Record<string, unknown>> {
  const client = await connectPg(withDatabase(serverUrl, DATABASE));
  try {
    return await productionState(client);
  } finally {
    await client.end();
  }
}

describe('the console in Chromium', () => {
  it("shows the demo's runs and snapshots, restores the pre-upgrade snapshot, and the database holds its data", async () => {
    await page.goto(server.url);
    const db = page.locator(`button[data-database="${DATABASE}"]`);
    await expect.poll(() => db.textContent()).toContain('schema 3 · compatible from 1');
    // The runs: one succeeded, one rolled back with its error code and failing migration.
    await expect.poll(() => page.locator('details.run').count()).toBe(2);
    const runs = await page.locator('#runs').textContent();
    expect(runs).toContain('succeeded');
    expect(runs).toContain('rolled back');
    expect(runs).toContain('MIGRATION_FAILED');
    expect(runs).toContain('V5__orders_amount_positive.sql');
    // The rehearsal of upgrade 1: a bar per migration and the predicted window.
    expect(await page.locator('#rehearsals svg.chart rect').count()).toBe(2);
    expect(await page.locator('#rehearsals').textContent()).toContain('Predicted quiesced window');
    expect(await page.locator('#quiesced').textContent()).toContain(`db-role:${APP_ROLE}`);

    // The snapshot taken before upgrade 1 holds version 2; restore it.
    const snapshots = await backend.listSnapshots(DATABASE);
    const found = snapshots.find((s: SnapshotView) => s.schemaVersion === '2' && s.kind === 'pre-upgrade');
    expect(found, JSON.stringify(snapshots)).toBeTruthy();
    const target = defined(found, 'the pre-upgrade snapshot of version 2');
    const expected = await stateOfSnapshot(target.snapshotId);
    expect(await productionNow()).not.toEqual(expected);

    const button = page.locator(`button[data-snapshot="${target.snapshotId}"]`);
    await button.click();
    const dialog = page.locator('#restore-dialog');
    await expect.poll(() => dialog.evaluate((d: HTMLDialogElement) => d.open)).toBe(true);
    const said = await dialog.textContent();
    expect(said).toContain('safety snapshot');
    expect(said).toContain(`Type the database name ${DATABASE} to confirm`);
    expect(await page.locator('#restore-go').isDisabled()).toBe(true);
    await page.keyboard.type(DATABASE);
    expect(await page.locator('#restore-go').isDisabled()).toBe(false);
    await page.locator('#restore-go').click();

    const progress = page.locator('#restore-progress');
    await expect
      .poll(async () => ['succeeded', 'failed'].includes((await progress.getAttribute('data-status')) ?? ''), { timeout: 90_000, interval: 250 })
      .toBe(true);
    expect(await progress.getAttribute('data-status'), (await page.locator('#progress-summary').textContent()) ?? '').toBe('succeeded');
    expect(await page.locator('#progress-summary').textContent()).toContain('safety snapshot ss-safe-');
    expect(await page.locator('#progress-states li').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('StartSafetySnapshot')]));
    await expect.poll(() => db.textContent()).toContain('schema 2');

    // In the database: exactly what the snapshot holds.
    expect(await productionNow()).toEqual(expected);

    await mkdir(ARTIFACTS, { recursive: true });
    // The restore and the rolled-back upgrade opened: their timelines and the error are what an operator reads.
    for (const i of [0, 1])
      await page
        .locator('#runs details.run')
        .nth(i)
        .evaluate((d: HTMLDetailsElement) => {
          d.open = true;
        });
    await page.screenshot({ path: path.join(ARTIFACTS, 'console.png'), fullPage: true });
  }, 120_000);

  it('opens and cancels the Restore dialog with the keyboard, giving the focus back', async () => {
    const button = page.locator('button[data-snapshot]').first();
    await button.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => (document.getElementById('restore-dialog') as HTMLDialogElement).open)).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('restore-confirm');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('restore-cancel');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.evaluate(() => (document.getElementById('restore-dialog') as HTMLDialogElement).open)).toBe(false);
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.snapshot)).toBe(await button.getAttribute('data-snapshot'));

    // Space on the button, then Cancel with Enter.
    await page.keyboard.press('Space');
    await expect.poll(() => page.evaluate(() => (document.getElementById('restore-dialog') as HTMLDialogElement).open)).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => (document.getElementById('restore-dialog') as HTMLDialogElement).open)).toBe(false);
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.snapshot)).toBe(await button.getAttribute('data-snapshot'));
  });

  it('reads on a narrow window without sideways scrolling, and loaded nothing from elsewhere', async () => {
    await page.setViewportSize({ width: 380, height: 800 });
    await page.reload();
    await page.locator('details.run').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(380);
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-narrow.png'), fullPage: false });
    const own = server.url.replace(/\/$/, '');
    expect(requested.filter((u) => !u.startsWith(own) && !u.startsWith('data:'))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
