import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { runStep } from '../src/steps/registry.ts';
import { runSafeshift } from './support/cli.ts';
import { defined } from './support/defined.ts';
import { withPorts } from './support/fault-matrix.ts';
import { remainingDatabases, TrackedCopies } from './support/run-resources.ts';
import { EXAMPLE_MIGRATIONS, keptDatabases, shopTemplate, type ShopTemplate } from './support/shop.ts';

/**
 * The databases a run replaces (the production a swap retires, the production a rollback replaces)
 * may hold writes nothing else has, so they are kept for a while, recorded and listed, never
 * deleted at the end of the run that made them; a later cleanup deletes them once their time is up.
 */
let shop: ShopTemplate;
const copies = new TrackedCopies();
beforeAll(async () => {
  shop = await shopTemplate(100);
});
afterEach(() => copies.cleanUp());
afterAll(async () => {
  expect(await remainingDatabases(copies.made)).toEqual([]);
  await shop.dispose();
});

describe('databases a run replaced', () => {
  it('keeps the production a swap retired, lists it, refuses to restore from it, and deletes it once its time is up', async () => {
    const db = await copies.copy(shop, 'kept');
    const report = await withPorts(db, (p) =>
      runWorkflow(p, { kind: 'upgrade', database: db.database, strategy: 'swap', rehearsal: false, quiesce: [`db-role:${shop.appRole}`] }),
    );
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    const [retired] = await db.withClient((c) => keptDatabases(c, db.database));
    expect(retired, 'the old production is kept').toMatch(/^ss-old-/);
    const retiredId = defined(retired, 'the kept old production');

    const listed = await runSafeshift(['snapshots', '--database-url', db.url, '--json']);
    const rows = JSON.parse(listed.stdout) as { snapshotId: string; kind: string; keepUntil?: string }[];
    const row = rows.find((r) => r.snapshotId === retired);
    expect(row?.kind).toBe('retired');
    expect(Date.parse(row?.keepUntil ?? '') - Date.now(), 'kept about three days').toBeGreaterThan(71 * 3_600_000);

    const restore = await runSafeshift([
      'restore',
      '--snapshot',
      retiredId,
      '--database-url',
      db.url,
      '--dir',
      EXAMPLE_MIGRATIONS,
      '--quiesce',
      `db-role:${shop.appRole}`,
    ]);
    expect(restore.code, restore.stdout).toBe(2);
    expect(restore.stdout).toContain('is not a snapshot but the database run');

    // A cleanup of a later run, three days and an hour on: the kept database's time is up.
    await withPorts(db, async (p) => {
      const later = { ...p.ctx, now: () => new Date(Date.now() + 73 * 3_600_000) };
      const out = (await runStep('cleanup', { state: { run: { runId: 'later-run', kind: 'upgrade', database: db.database } } }, later)) as {
        deleted: string[];
      };
      expect(out.deleted).toContain(retired);
      expect((await p.ctx.ledger.getSnapshot(retiredId))?.status).toBe('deleted');
    });
    expect(await db.withClient((c) => keptDatabases(c, db.database))).toEqual([]);
  });
});
