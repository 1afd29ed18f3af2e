import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runLocally } from '../src/adapters/local/local-runner.ts';
import { runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import type { RunInput } from '../src/steps/state.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { FAULT_MODES, FAULT_RETRY_INTERVAL_MS, faultInjector, withPorts, type Fault } from './support/fault-matrix.ts';
import { remainingDatabases, TrackedCopies } from './support/run-resources.ts';
import { leftovers, productionState, roleState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * What preflight refuses before the lock, changing nothing: databases that are not an
 * application's, runs with nothing quiesced, quiesce specs that cannot work, input that would fail
 * after Quiesce. Each case: exit "refused", production, the app role and the lock as before.
 */
let shop: ShopTemplate;
const copies = new TrackedCopies();
const copy = (prefix: string): Promise<CaseDatabase> => copies.copy(shop, prefix);

beforeAll(async () => {
  shop = await shopTemplate(100);
});
afterEach(() => copies.cleanUp());
afterAll(async () => {
  expect(await remainingDatabases(copies.made), 'no copy, snapshot or clone left').toEqual([]);
  await shop.dispose();
});

function upgrade(database: string, extra: Partial<Omit<RunInput, 'runId' | 'database'>> = {}): Promise<WorkflowReport> {
  return withPorts(database, (p) => runWorkflow(p, { kind: 'upgrade', database, quiesce: [`db-role:${shop.appRole}`], ...extra }));
}

/** Refused at Preflight: nothing past it ran, the lock is free, production and the role are untouched. */
async function expectRefusedAtPreflight(db: CaseDatabase, report: WorkflowReport, code: string, before: { state: unknown; role: unknown }) {
  expect(report.run.status, report.run.error?.message).toBe('refused');
  expect(report.run.error?.code).toBe(code);
  expect(report.timeline.map((t) => t.state)).toEqual(['Preflight', 'FinishRefused', 'Refused']);
  expect(await db.withClient(productionState)).toEqual(before.state);
  expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(before.role);
  expect(await db.withClient((c) => leftovers(c, db.database))).toEqual([]);
  await withPorts(db.database, async (p) => expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined());
}

/** A port on loopback that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function snapshotOf(db: CaseDatabase) {
  return { state: await db.withClient(productionState), role: await db.withClient((c) => roleState(c, shop.appRole, db.database)) };
}

describe("databases that are not an application's", () => {
  it("refuses the ledger's own database, the maintenance database and templates, and the ledger keeps every run", async () => {
    const db = await copy('tgt');
    const done = await upgrade(db.database);
    expect(done.run.status, done.run.error?.message).toBe('succeeded');
    for (const target of ['safeshift_control', 'postgres', 'template1']) {
      const report = await upgrade(target);
      expect(report.run.status, `${target}: ${report.run.error?.message}`).toBe('refused');
      expect(report.run.error?.code, target).toBe('TARGET_REFUSED');
      expect(
        report.timeline.map((t) => t.state),
        target,
      ).toEqual(['Preflight', 'FinishRefused', 'Refused']);
    }
    // The run before is still recorded: nothing rewound the ledger.
    await withPorts(db.database, async (p) => expect((await p.ctx.ledger.getRun(done.run.runId))?.status).toBe('succeeded'));
  });

  it('refuses a snapshot or clone safeshift made, naming the database it belongs to', async () => {
    const db = await copy('tgs');
    const done = await upgrade(db.database);
    const snapshotId = defined(done.run.snapshotId, 'the snapshot of the run before');
    const report = await upgrade(snapshotId);
    expect(report.run.error?.code).toBe('TARGET_REFUSED');
    expect(report.run.error?.message).toContain(`made for "${db.database}"`);
  });
});

describe('nothing quiesced', () => {
  it('refuses an upgrade that quiesces nothing, saying what a restore would lose, unless --no-quiesce says so on purpose', async () => {
    const db = await copy('nq');
    const before = await snapshotOf(db);
    const refused = await upgrade(db.database, { quiesce: [] });
    await expectRefusedAtPreflight(db, refused, 'NOTHING_QUIESCED', before);
    expect(refused.run.error?.message).toMatch(/every write committed after it is lost/);
    expect(refused.run.error?.message).toContain('--no-quiesce');
    const allowed = await upgrade(db.database, { quiesce: [], noQuiesce: true });
    expect(allowed.run.status, allowed.run.error?.message).toBe('succeeded');
  });
});

describe('quiesce specs checked before the lock', () => {
  it('refuses a role that does not exist, a superuser, and the role safeshift connects as, before any rehearsal', async () => {
    const db = await copy('qs');
    const before = await snapshotOf(db);
    const superuser = `ss_super_${randomUUID().slice(0, 8)}`;
    const admin = await connectPg(testServerUrl());
    try {
      await admin.query(`create role ${escapeIdentifier(superuser)} superuser login`);
      const self = defined((await admin.query<{ u: string }>('select session_user as u')).rows[0], 'the session user row').u;
      for (const [spec, code, words] of [
        ['db-role:no_such_role_here', 'BAD_OPTION', /does not exist/],
        [`db-role:${superuser}`, 'BAD_OPTION', /is a superuser/],
        [`db-role:${self}`, 'BAD_OPTION', /the role safeshift connects as/],
        [`http:http://127.0.0.1:${await closedPort()}/maintenance`, 'QUIESCE_FAILED', /connection refused/],
      ] as const) {
        const report = await upgrade(db.database, { quiesce: [spec] });
        await expectRefusedAtPreflight(db, report, code, before);
        expect(report.run.error?.message, spec).toMatch(words);
      }
      const role = (await admin.query<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [superuser])).rows[0];
      expect(role?.rolcanlogin, 'the superuser was never locked out').toBe(true);
    } finally {
      await admin.query(`drop role if exists ${escapeIdentifier(superuser)}`);
      await admin.end();
    }
  }, 180_000);
});

describe('the input contract, enforced by the machine itself', () => {
  it('fills in the defaults a pipeline left out (no strategy, no rehearsal flag) in the first state', async () => {
    const db = await copy('in');
    const runId = randomUUID();
    const result = await withPorts(db.database, (p) =>
      runLocally({
        definition: upgradeWorkflow(),
        ctx: p.ctx,
        input: { run: { runId, kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`] } },
      }),
    );
    expect(result.status, JSON.stringify(result.error)).toBe('SUCCEEDED');
    await withPorts(db.database, async (p) => {
      const run = await p.ctx.ledger.getRun(runId);
      expect(run?.status).toBe('succeeded');
      expect(run?.strategy).toBe('in-place');
    });
  });

  it('refuses an input that is wrong before the lock, listing every problem, the app role never locked out', async () => {
    const db = await copy('ib');
    const before = await snapshotOf(db);
    const runId = randomUUID();
    const result = await withPorts(db.database, (p) =>
      runLocally({
        definition: upgradeWorkflow(),
        ctx: p.ctx,
        input: { run: { runId, kind: 'upgrade', database: db.database, strategy: 'yolo', rehearsal: 'yes', quiesce: [`db-role:${shop.appRole}`] } },
      }),
    );
    expect(result.status).toBe('FAILED');
    expect(result.timeline.map((t) => t.state)).toEqual(['Preflight', 'FinishRefused', 'Refused']);
    await withPorts(db.database, async (p) => {
      const run = await p.ctx.ledger.getRun(runId);
      expect(run?.status).toBe('refused');
      expect(run?.error?.code).toBe('BAD_OPTION');
      expect(run?.error?.message).toMatch(/run\.strategy is in-place or swap, not "yolo"/);
      expect(run?.error?.message).toMatch(/run\.rehearsal must be true or false/);
      expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined();
    });
    expect(await db.withClient(productionState)).toEqual(before.state);
    expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(before.role);
  });
});

describe('the refusal path, faulted', () => {
  it.each(FAULT_MODES)('a refused run whose FinishRefused %s still ends refused, recorded, with the lock free', async (mode) => {
    const db = await copy('rf');
    const before = await snapshotOf(db);
    const fired: Fault[] = [];
    const report = await withPorts(db.database, (p) =>
      runWorkflow(
        p,
        { kind: 'upgrade', database: db.database, quiesce: [] },
        { invoke: faultInjector(p, [{ state: 'FinishRefused', mode }], fired), retryIntervalMs: FAULT_RETRY_INTERVAL_MS },
      ),
    );
    expect(fired).toEqual([{ state: 'FinishRefused', mode }]);
    expect(report.run.status).toBe('refused');
    expect(report.run.error?.code).toBe('NOTHING_QUIESCED');
    expect(await db.withClient(productionState)).toEqual(before.state);
    await withPorts(db.database, async (p) => expect(await p.ctx.ledger.getLock(db.database)).toBeUndefined());
  });
});
