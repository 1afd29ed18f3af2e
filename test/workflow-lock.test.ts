import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type LocalPorts, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import type { RunInput } from '../src/steps/state.ts';
import { runSafeshift } from './support/cli.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { dropCase, remainingDatabases, roleExists, TrackedCopies } from './support/run-resources.ts';
import { EXAMPLE_MIGRATIONS, leftovers, productionState, roleState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * One run per database at a time: a second upgrade started at the same moment is refused with
 * LOCKED and changes nothing; a lock left by a crashed run is reported as stale, never taken over,
 * and can be broken on purpose (by the ledger or `safeshift unlock --break`).
 */
const RACE_ROUNDS = 3;

let shop: ShopTemplate;
let before: Record<string, unknown>;
let after: Record<string, unknown>;
let roleBefore: Record<string, unknown>;
/** Every copy this file made, to check at the end that none of them, nor anything runs made for them, is left. */
const copies = new TrackedCopies();

/** A copy of the shop for one test, dropped afterwards with everything runs made for it. */
const copy = (prefix: string): Promise<CaseDatabase> => copies.copy(shop, prefix);

async function ports(db: CaseDatabase): Promise<LocalPorts> {
  const p = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  copies.onCleanup(() => p.close());
  return p;
}

function upgrade(p: LocalPorts, db: CaseDatabase, extra: Partial<Omit<RunInput, 'runId'>> = {}): Promise<WorkflowReport> {
  return runWorkflow(p, { kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`], ...extra });
}

/** Which run applied each version of the history. */
async function appliedBy(db: CaseDatabase): Promise<{ version: string | null; run_id: string | null }[]> {
  return db.withClient(
    async (c) =>
      (
        await c.query<{ version: string | null; run_id: string | null }>(
          'select version, run_id from safeshift_schema_history where success order by installed_rank',
        )
      ).rows,
  );
}

beforeAll(async () => {
  shop = await shopTemplate(300);
  const ref = copies.remember(await shop.copy('lkref'));
  try {
    before = await ref.withClient(productionState);
    roleBefore = await ref.withClient((c) => roleState(c, shop.appRole, ref.database));
    const p = await openLocalPorts({ serverUrl: testServerUrl(), database: ref.database, migrationsDir: EXAMPLE_MIGRATIONS });
    try {
      const report = await upgrade(p, ref);
      expect(report.run.status, report.run.error?.message).toBe('succeeded');
    } finally {
      await p.close();
    }
    after = await ref.withClient(productionState);
    expect(after).not.toEqual(before);
  } finally {
    await dropCase(ref);
  }
});

afterEach(() => copies.cleanUp());

afterAll(async () => {
  // Unset when beforeAll failed before making it.
  const made = shop as ShopTemplate | undefined;
  await made?.dispose();
  expect(await remainingDatabases([...copies.made, ...(made ? [made.template] : [])]), 'nothing left behind').toEqual([]);
  if (made) expect(await roleExists(made.appRole), 'the app role is dropped').toBe(false);
});

describe('one run per database at a time', () => {
  it(`refuses the second of two upgrades started at the same moment with LOCKED, and it changes nothing (${RACE_ROUNDS} rounds)`, async () => {
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const db = await copy('race');
      const [one, two] = [await ports(db), await ports(db)];
      const reports = await Promise.all([upgrade(one, db), upgrade(two, db)]);
      const label = `round ${round}`;

      expect(reports.map((r) => r.run.status).sort(), `${label}: ${reports.map((r) => r.run.error?.message).join(' / ')}`).toEqual(['refused', 'succeeded']);
      const winner = defined(
        reports.find((r) => r.run.status === 'succeeded'),
        `${label}: the run that succeeded`,
      );
      const loser = defined(
        reports.find((r) => r.run.status === 'refused'),
        `${label}: the run that was refused`,
      );
      expect(loser.run.error?.code, label).toBe('LOCKED');
      expect(loser.run.error?.message, `${label}: the refusal names the run holding the lock`).toContain(winner.run.runId);
      expect(loser.run.error?.message).not.toContain('stale');

      // The loser quiesced nothing, snapshotted nothing, applied nothing: it stopped at its preflight.
      expect(loser.quiesced, label).toEqual([]);
      expect(loser.quiescedWindowMs).toBeNull();
      expect(loser.run.applied ?? []).toEqual([]);
      expect(loser.timeline.map((t) => t.state)).toEqual(['Preflight', 'FinishRefused', 'Refused']);
      expect(winner.quiesced.map((q) => q.status)).toEqual(['resumed']);

      // Production is fully upgraded, by the winner alone.
      expect(await db.withClient(productionState), `${label}: production fully upgraded`).toEqual(after);
      const history = await appliedBy(db);
      expect(history.filter((h) => h.run_id === loser.run.runId)).toEqual([]);
      expect(history.filter((h) => h.run_id === winner.run.runId).map((h) => h.version)).toEqual(['2.1', '3']);

      const { ledger } = one.ctx;
      expect(await ledger.getLock(db.database), `${label}: lock released`).toBeUndefined();
      expect((await ledger.getRun(loser.run.runId))?.status).toBe('refused');
      expect(await ledger.listQuiesced({ runId: loser.run.runId })).toEqual([]);
      const snapshots = await ledger.listSnapshots(db.database);
      expect(new Set(snapshots.map((s) => s.runId)), `${label}: only the winner snapshotted`).toEqual(new Set([winner.run.runId]));
      expect(snapshots.filter((s) => s.kind === 'pre-upgrade').map((s) => s.snapshotId)).toEqual([winner.run.snapshotId]);
      expect(await db.withClient((c) => roleState(c, shop.appRole, db.database)), `${label}: role rights put back`).toEqual(roleBefore);
      expect(await db.withClient((c) => leftovers(c, db.database))).toEqual([]);
      await copies.cleanUp();
    }
  }, 300_000);

  it('refuses to take over a lock left by a crashed run, reports it as stale, and runs once it is broken', async () => {
    const db = await copy('stale');
    const p = await ports(db);
    const { ledger } = p.ctx;
    const taken = await ledger.acquireLock(db.database, 'crashed-run', 1);
    expect(taken.owner).toBe('crashed-run');
    await new Promise((r) => setTimeout(r, 20));

    const lock = await ledger.getLock(db.database);
    expect(lock).toMatchObject({ database: db.database, owner: 'crashed-run' });
    const { acquiredAt, expiresAt } = defined(lock, 'the stale lock');
    const ageMs = Date.now() - Date.parse(acquiredAt);
    expect(ageMs).toBeGreaterThanOrEqual(0);
    expect(ageMs).toBeLessThan(60_000);
    expect(Date.parse(expiresAt)).toBeLessThan(Date.now());

    const refused = await upgrade(p, db);
    expect(refused.run.status).toBe('refused');
    expect(refused.run.error?.code).toBe('LOCKED');
    expect(refused.run.error?.message).toContain('crashed-run');
    expect(refused.run.error?.message).toMatch(/stale/);
    expect(refused.run.error?.message).toContain('unlock');
    expect(refused.quiesced).toEqual([]);
    expect(await db.withClient(productionState), 'nothing changed').toEqual(before);
    // Not taken over, not released by the refused run: still the crashed run's.
    expect((await ledger.getLock(db.database))?.owner).toBe('crashed-run');
    // A second attempt is refused just the same: nothing expires into a silent takeover.
    expect((await upgrade(p, db)).run.error?.code).toBe('LOCKED');

    const broken = await ledger.breakLock(db.database);
    expect(broken).toMatchObject({ database: db.database, owner: 'crashed-run' });
    expect(await ledger.getLock(db.database)).toBeUndefined();

    const report = await upgrade(p, db);
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    expect(await db.withClient(productionState)).toEqual(after);
    expect(await ledger.getLock(db.database)).toBeUndefined();
    expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(roleBefore);
  }, 120_000);

  it('refuses while a live lock is held, saying when it expires rather than calling it stale', async () => {
    const db = await copy('live');
    const p = await ports(db);
    await p.ctx.ledger.acquireLock(db.database, 'busy-run', 3_600_000);
    const refused = await upgrade(p, db, { rehearsal: false });
    expect(refused.run.status).toBe('refused');
    expect(refused.run.error?.code).toBe('LOCKED');
    expect(refused.run.error?.message).toContain('busy-run');
    expect(refused.run.error?.message).toContain('expires in');
    expect(refused.run.error?.message).not.toMatch(/stale/);
    expect(await db.withClient(productionState)).toEqual(before);
    expect((await p.ctx.ledger.releaseLock(db.database, 'busy-run'), await p.ctx.ledger.getLock(db.database))).toBeUndefined();
  }, 60_000);

  it('safeshift unlock shows a stale lock with its owner, and --break removes it', async () => {
    const db = await copy('cli');
    const p = await ports(db);
    await p.ctx.ledger.acquireLock(db.database, 'crashed-run', 1);
    await new Promise((r) => setTimeout(r, 20));
    const url = db.url;

    const shown = await runSafeshift(['unlock', '--database-url', url]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`locked of ${db.database}: owner run crashed-run`);
    expect(shown.stdout).toContain('stale');
    expect((await p.ctx.ledger.getLock(db.database))?.owner, 'showing it changes nothing').toBe('crashed-run');

    const json = await runSafeshift(['unlock', '--database-url', url, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ database: db.database, lock: { owner: 'crashed-run', database: db.database }, broken: false });

    const broken = await runSafeshift(['unlock', '--database-url', url, '--break']);
    expect(broken.code, broken.stderr).toBe(0);
    expect(broken.stdout).toContain('broke the lock');
    expect(broken.stdout).toContain('crashed-run');
    expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined();

    const none = await runSafeshift(['unlock', '--database-url', url]);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain(`${db.database} is not locked`);
    // The password in the URL never reaches the output.
    const password = decodeURIComponent(new URL(url).password);
    if (password) for (const out of [shown, json, broken, none]) expect(out.stdout + out.stderr).not.toContain(password);
  }, 60_000);
});
