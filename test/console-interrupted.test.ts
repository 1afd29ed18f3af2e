import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConsoleBackend } from '../src/console-server/local-backend.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { interruptedRun, recover } from './support/interruption.ts';
import { EXAMPLE_MIGRATIONS, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * The console after an upgrade's process was killed with the API quiesced: the run, the lock and the
 * quiesce record all say "interrupted" and name `safeshift recover`, never "run in progress"; a
 * restore is refused the same way; after `recover`, nothing is shown as interrupted any more.
 */
let shop: ShopTemplate | undefined;
let db: CaseDatabase;
let backend: LocalConsoleBackend | undefined;
const runId = randomUUID();

beforeAll(async () => {
  shop = await shopTemplate(50);
  db = await shop.copy('cint');
  const exit = await interruptedRun({
    migrationsDir: EXAMPLE_MIGRATIONS,
    signal: 'SIGKILL',
    at: { state: 'ConfirmQuiesced', moment: 'before' },
    input: { kind: 'upgrade', database: db.database, runId, quiesce: [`db-role:${shop.appRole}`], rehearsal: false, strategy: 'in-place', targetVersion: null },
  });
  expect(exit.signal, `${exit.stdout}\n${exit.stderr}`).toBe('SIGKILL');
  backend = await LocalConsoleBackend.open({ serverUrl: testServerUrl(), migrationsDir: EXAMPLE_MIGRATIONS, databases: [db.database] });
}, 120_000);

afterAll(async () => {
  await backend?.close();
  await db.drop();
  await shop?.dispose();
});

describe('the console and an interrupted run', () => {
  it('shows the run, its lock and its quiesced API as interrupted, each naming safeshift recover', async () => {
    const live = defined(backend, 'the console backend');
    const [database] = await live.listDatabases();
    expect(database?.lock?.owner).toBe(runId);
    expect(database?.lock?.interrupted).toMatch(new RegExp(`interrupted at ConfirmQuiesced.*safeshift recover --database ${db.database}`));

    const [run] = await live.listRuns(db.database);
    expect(run).toMatchObject({ runId, status: 'running' });
    expect(run?.interrupted).toContain('safeshift recover');

    const quiesced = await live.listQuiesced(db.database);
    expect(quiesced).toHaveLength(1);
    expect(quiesced[0]).toMatchObject({ stillQuiesced: true, runActive: false });
    expect(quiesced[0]?.runInterrupted).toContain('safeshift recover');
  });

  it('refuses a restore with LOCKED naming recover, and shows nothing interrupted once recover has run', async () => {
    const live = defined(backend, 'the console backend');
    const [snapshot] = await live.listSnapshots(db.database);
    expect(snapshot?.kind, 'the run took its pre-upgrade snapshot before it was killed').toBe('pre-upgrade');
    await expect(live.startRestore(db.database, defined(snapshot, 'the snapshot').snapshotId)).rejects.toThrow(/safeshift recover --database/);

    const recovered = await recover(db.database, EXAMPLE_MIGRATIONS);
    expect(recovered.report?.run.status, recovered.summary).toBe('succeeded');
    const [database] = await live.listDatabases();
    expect(database?.lock).toBeUndefined();
    const [run] = await live.listRuns(db.database);
    expect(run).toMatchObject({ runId, status: 'succeeded' });
    expect(run?.interrupted).toBeUndefined();
    expect((await live.listQuiesced(db.database)).filter((q) => q.stillQuiesced)).toEqual([]);
  }, 120_000);
});
