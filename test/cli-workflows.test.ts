import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSafeshift } from './support/cli.ts';
import { defined } from './support/defined.ts';
import { EXAMPLE_MIGRATIONS, productionState, shopTemplate, type ShopTemplate } from './support/shop.ts';

describe('safeshift upgrade / rehearse / restore / runs / snapshots / quiesced', () => {
  let shop: ShopTemplate;
  let failing: string;
  beforeAll(async () => {
    shop = await shopTemplate(300);
    failing = await mkdtemp(path.join(os.tmpdir(), 'safeshift-cli-wf-'));
    await cp(EXAMPLE_MIGRATIONS, path.join(failing, 'migrations'), { recursive: true });
    await writeFile(path.join(failing, 'migrations', 'V4__note.sql'), 'alter table orders add column note text;');
    await writeFile(
      path.join(failing, 'migrations', 'V5__positive.sql'),
      '-- safeshift:allow check-without-not-valid test\nalter table orders add constraint positive check (amount_cents > 0);',
    );
  });
  afterAll(async () => {
    // Unset when beforeAll failed before making it.
    await (shop as ShopTemplate | undefined)?.dispose();
    await rm(failing, { recursive: true, force: true });
  });

  it('upgrades, lists what it recorded, and restores the pre-upgrade snapshot, with the exit codes of DESIGN.md', async () => {
    const db = await shop.copy('cliwf');
    try {
      const before = await db.withClient(productionState);
      const base = ['--database-url', db.url];
      const quiesce = ['--quiesce', `db-role:${shop.appRole}`];

      const rehearse = await runSafeshift(['rehearse', '--dir', EXAMPLE_MIGRATIONS, ...base, '--json']);
      expect(rehearse.code, rehearse.stderr).toBe(0);
      const { rehearsal } = JSON.parse(rehearse.stdout) as { rehearsal: { migrations: { script: string }[]; predictedWindowMs: number } };
      expect(
        rehearsal.migrations.map((m) => m.script),
        JSON.stringify(rehearsal),
      ).toEqual(['V2.1__index_order_status.sql', 'V3__customer_order_totals.ts']);
      expect(rehearsal.predictedWindowMs).toBeGreaterThan(0);
      expect(await db.withClient(productionState)).toEqual(before);

      const upgrade = await runSafeshift(['upgrade', '--dir', EXAMPLE_MIGRATIONS, ...base, ...quiesce, '--json']);
      expect(upgrade.code, upgrade.stderr).toBe(0);
      const report = JSON.parse(upgrade.stdout) as { run: unknown; transitions: number; quiesced: { status: string }[] };
      expect(report.run).toMatchObject({ status: 'succeeded', fromVersion: '2', toVersion: '3' });
      expect(report.transitions).toBeGreaterThan(10);
      expect(report.quiesced.map((q) => q.status)).toEqual(['resumed']);
      expect(upgrade.stderr).toContain('-> MigrateProduction');
      // Progress counts the run, not the one-migration invocation.
      expect(upgrade.stderr).toContain('[1/2] V2.1__index_order_status.sql');
      expect(upgrade.stderr).toContain('[2/2] V3__customer_order_totals.ts');

      const snapshots = await runSafeshift(['snapshots', ...base, '--json']);
      expect(snapshots.code).toBe(0);
      const list = JSON.parse(snapshots.stdout) as { snapshotId: string; kind: string; schemaVersion: string }[];
      const pre = defined(
        list.find((s) => s.kind === 'pre-upgrade'),
        'the pre-upgrade snapshot',
      );
      expect(pre.schemaVersion).toBe('2');

      const runs = await runSafeshift(['runs', ...base]);
      expect(runs.stdout).toContain('succeeded');
      expect((await runSafeshift(['quiesced', ...base])).code).toBe(0);

      const unknown = await runSafeshift(['restore', '--snapshot', 'ss-pre-nope-000000000000', ...base, ...quiesce]);
      expect(unknown.code, unknown.stdout + unknown.stderr).toBe(2);
      expect(unknown.stdout + unknown.stderr).toContain('SNAPSHOT_NOT_FOUND');

      // Nothing quiesced is refused unless said on purpose: a restore loses what is written meanwhile.
      const unquiesced = await runSafeshift(['restore', '--snapshot', pre.snapshotId, '--dir', EXAMPLE_MIGRATIONS, ...base]);
      expect(unquiesced.code, unquiesced.stdout + unquiesced.stderr).toBe(2);
      expect(unquiesced.stdout).toContain('NOTHING_QUIESCED');
      expect(unquiesced.stdout).toContain('--no-quiesce');

      const restore = await runSafeshift(['restore', '--snapshot', pre.snapshotId, '--dir', EXAMPLE_MIGRATIONS, ...base, ...quiesce]);
      expect(restore.code, restore.stdout + restore.stderr).toBe(0);
      expect(await db.withClient(productionState)).toEqual(before);
    } finally {
      await db.drop();
    }
  }, 180_000);

  it('exits 1 when the upgrade fails on real data and is rolled back, and 2 on bad input', async () => {
    const db = await shop.copy('cliwf2');
    try {
      const before = await db.withClient(productionState);
      const base = ['--database-url', db.url, '--quiesce', `db-role:${shop.appRole}`];
      const failed = await runSafeshift(['upgrade', '--dir', path.join(failing, 'migrations'), ...base, '--no-rehearsal']);
      expect(failed.code, failed.stderr).toBe(1);
      expect(failed.stdout).toContain('ROLLED BACK');
      // Where it meant to go, how it ended, where production is: not "2 -> 2".
      expect(failed.stdout).toMatch(/version 2 → [0-9.]+: rolled back, at 2/);
      const runs = await runSafeshift(['runs', '--database-url', db.url]);
      expect(runs.stdout).toMatch(/2 → [0-9.]+: rolled back, at 2/);
      expect(failed.stdout).toContain('MIGRATION_FAILED');
      expect(await db.withClient(productionState)).toEqual(before);

      const refused = await runSafeshift(['upgrade', '--dir', path.join(failing, 'migrations'), ...base]);
      expect(refused.code).toBe(2);
      expect(refused.stdout).toContain('REFUSED');
      expect(await db.withClient(productionState)).toEqual(before);

      // The swap strategy: the pre-upgrade snapshot and the clone to migrate are copied at once.
      const swapped = await runSafeshift(['upgrade', '--dir', EXAMPLE_MIGRATIONS, ...base, '--strategy', 'swap', '--no-rehearsal']);
      expect(swapped.code, swapped.stdout + swapped.stderr).toBe(0);
      expect(swapped.stderr).toMatch(/snapshot "ss-pre-[^"]+" and clone "ss-new-[^"]+" of "[^"]+" made in \d+ ms/);
      const upgraded = await db.withClient(productionState);
      expect(upgraded).not.toEqual(before);

      const badSpec = await runSafeshift(['upgrade', '--dir', EXAMPLE_MIGRATIONS, '--database-url', db.url, '--quiesce', 'carrier-pigeon:x']);
      expect(badSpec.code).toBe(2);
      expect(badSpec.stderr).toContain('BAD_OPTION');
      const badStrategy = await runSafeshift(['upgrade', '--dir', EXAMPLE_MIGRATIONS, '--database-url', db.url, '--strategy', 'yolo']);
      expect(badStrategy.code).toBe(2);
      expect(await db.withClient(productionState)).toEqual(upgraded);
    } finally {
      await db.drop();
    }
  }, 180_000);
});
