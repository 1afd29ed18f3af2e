import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { PostgresLedger } from '../src/adapters/local/postgres-ledger.ts';
import type { DatabaseView, QuiesceView, RehearsalView, RunView, SnapshotView } from '../src/console-server/backend.ts';
import { LocalConsoleBackend } from '../src/console-server/local-backend.ts';
import { startConsoleServer, type ConsoleServer } from '../src/console-server/server.ts';
import type { RunInput } from '../src/steps/state.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { dropRunResources } from './support/run-resources.ts';
import { EXAMPLE_MIGRATIONS, productionState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * The console's HTTP API on the test cluster, after real runs: an upgrade with a rehearsal (runs,
 * a pre-upgrade snapshot, quiesce records, a rehearsal report), an upgrade that fails on real data
 * and is rolled back (the error code and failing migration), then a restore through the API.
 * Its own seeded databases with unique names: the demo (fixed names) runs in one file only.
 */
const DEMO_DIR = path.resolve(import.meta.dirname, '../examples/demo');
/** Secrets planted in a prior state and an API spec, which no answer may show. */
const PLANTED = { password: 'pw-planted-4f9a1c', token: 'tok-planted-77e2b0' };

let shop: ShopTemplate;
let db: CaseDatabase;
let other: CaseDatabase;
let original: Record<string, unknown>;
let upgrade: WorkflowReport;
let failed: WorkflowReport;
let backend: LocalConsoleBackend;
let server: ConsoleServer;
let origin: string;
/** Every body the console sent in this file, checked for secrets at the end. */
const seen: string[] = [];

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly json: unknown;
}

/** The error code of an API answer (`{ error: { code } }`), if it has one. */
const errorCode = (answer: Answer) => (answer.json as { error?: { code?: string } } | undefined)?.error?.code;

/** A raw HTTP request (node:http, so Host, Origin and Sec-Fetch-Site are exactly what the test says). */
function request(pathname: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const url = new URL(pathname, server.url);
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          seen.push(text);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const get = async <T>(pathname: string): Promise<T> => {
  const answer = await request(pathname);
  expect(answer.status, answer.text).toBe(200);
  return answer.json as T;
};

/** A restore request as the console's own page sends it. */
const restore = (body: unknown, headers: Record<string, string> = {}) =>
  request('/api/restore', {
    method: 'POST',
    body,
    headers: { Origin: origin, 'Sec-Fetch-Site': 'same-origin', 'X-Safeshift-Token': server.token, ...headers },
  });

/** What a run's events carry, of what the tests read: `progress` has the states so far, `end` the run. */
interface EventData {
  readonly error?: unknown;
  readonly safetySnapshotId?: string;
  readonly states?: readonly { state: string }[];
}

/** Reads a run's Server-Sent Events until `end`. */
function events(runId: string): Promise<{ event: string; data: EventData }[]> {
  return new Promise((resolve, reject) => {
    http
      .get(new URL(`/api/runs/${runId}/events`, server.url), (res) => {
        let buffer = '';
        const out: { event: string; data: EventData }[] = [];
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            seen.push(block);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) out.push({ event, data: JSON.parse(data) as EventData });
          }
        });
        res.on('end', () => resolve(out));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function upgradeWith(
  target: CaseDatabase,
  input: Omit<RunInput, 'runId' | 'database' | 'kind'>,
  migrationsDir = EXAMPLE_MIGRATIONS,
): Promise<WorkflowReport> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: target.database, migrationsDir });
  try {
    return await runWorkflow(ports, { kind: 'upgrade', database: target.database, quiesce: [`db-role:${shop.appRole}`], ...input });
  } finally {
    await ports.close();
  }
}

beforeAll(async () => {
  shop = await shopTemplate(300);
  db = await shop.copy('console_api');
  other = await shop.copy('console_other');
  original = await db.withClient(productionState);
  upgrade = await upgradeWith(db, { targetVersion: '3', rehearsal: true });
  expect(upgrade.run.status, upgrade.run.error?.message).toBe('succeeded');

  // The other database: an upgrade whose V5 fails on real rows (a free order) and is rolled back.
  const failingDir = await mkdtemp(path.join(os.tmpdir(), 'safeshift-console-'));
  try {
    await cp(EXAMPLE_MIGRATIONS, failingDir, { recursive: true });
    for (const f of ['V4__orders_add_note.sql', 'V5__orders_amount_positive.sql']) await cp(path.join(DEMO_DIR, f), path.join(failingDir, f));
    failed = await upgradeWith(other, { rehearsal: false }, failingDir);
    expect(failed.run.status, failed.run.error?.message).toBe('rolled-back');
  } finally {
    await rm(failingDir, { recursive: true, force: true });
  }
  // And an API left quiesced by a run that ended (needs an operator), with credentials in its record.
  const ledger = await PostgresLedger.open(testServerUrl());
  try {
    const runId = randomUUID();
    const at = new Date().toISOString();
    await ledger.startRun({ runId, database: other.database, kind: 'upgrade', status: 'needs-operator', startedAt: at, endedAt: at });
    await ledger.putQuiesce({
      runId,
      database: other.database,
      apiId: `http:http://ops:${PLANTED.password}@127.0.0.1:9/maintenance`,
      prior: { mode: 'normal', token: PLANTED.token, note: `postgres://app:${PLANTED.password}@db/shop` },
      status: 'quiesced',
      quiescedAt: at,
    });
  } finally {
    await ledger.close();
  }

  backend = await LocalConsoleBackend.open({ serverUrl: testServerUrl(), migrationsDir: EXAMPLE_MIGRATIONS, databases: [db.database, other.database] });
  server = await startConsoleServer({ backend });
  origin = server.url.replace(/\/$/, '');
}, 180_000);

afterAll(async () => {
  // Each is unset when beforeAll failed before making it.
  await (server as ConsoleServer | undefined)?.close();
  await (backend as LocalConsoleBackend | undefined)?.close();
  for (const d of [db, other] as (CaseDatabase | undefined)[]) {
    if (!d) continue;
    await dropRunResources(d.database);
    await d.drop();
  }
  await (shop as ShopTemplate | undefined)?.dispose();
});

describe('the console API', () => {
  it('serves the page with its session token, a strict CSP, no-store and nothing from elsewhere', async () => {
    const page = await request('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`<meta name="safeshift-token" content="${server.token}">`);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const asset of ['/app.js', '/dom.js', '/views.js', '/style.css']) {
      const a = await request(asset);
      expect(a.status).toBe(200);
      expect(a.text).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
    expect((await request('/../package.json')).status).toBe(404);
    expect((await request('/api/databases')).headers['cache-control']).toBe('no-store');
  });

  it('lists each database with its schema version, compatible_from, and anything still quiesced', async () => {
    const databases = await get<DatabaseView[]>('/api/databases');
    expect(databases.map((d) => d.name).sort()).toEqual([db.database, other.database].sort());
    const mine = defined(
      databases.find((d) => d.name === db.database),
      `the database ${db.database}`,
    );
    expect(mine).toMatchObject({ schemaVersion: '3', compatibleFrom: '1', stillQuiesced: 0, restoreQuiesces: [`db-role:${shop.appRole}`] });
    expect(mine.lastRun).toMatchObject({ kind: 'upgrade', status: 'succeeded', runId: upgrade.run.runId });
    expect(mine.restorableSnapshots).toBe(1);
    const theirs = defined(
      databases.find((d) => d.name === other.database),
      `the database ${other.database}`,
    );
    expect(theirs.schemaVersion).toBe('2');
    expect(theirs.stillQuiesced).toBe(1);
  });

  it('lists runs with their timeline and durations, and a failed run with its code and failing migration', async () => {
    const run = defined((await get<RunView[]>(`/api/runs?database=${db.database}`))[0], 'the run');
    expect(run).toMatchObject({
      runId: upgrade.run.runId,
      kind: 'upgrade',
      status: 'succeeded',
      fromVersion: '2',
      toVersion: '3',
      snapshotId: upgrade.run.snapshotId,
    });
    expect(run.timeline.length).toBeGreaterThan(5);
    expect(run.timeline.every((t) => typeof t.durationMs === 'number' && t.durationMs >= 0)).toBe(true);
    expect(run.timeline.map((t) => t.state)).toEqual(expect.arrayContaining(['Preflight', 'Quiesce', 'MigrateProduction', 'Resume']));
    expect(run.quiescedWindowMs).toBeGreaterThan(0);
    expect(await get<RunView>(`/api/runs/${upgrade.run.runId}`)).toMatchObject({ runId: upgrade.run.runId, status: 'succeeded' });

    const runs = await get<RunView[]>(`/api/runs?database=${other.database}`);
    const rolledBack = defined(
      runs.find((r) => r.runId === failed.run.runId),
      'the rolled-back run',
    );
    expect(rolledBack.status).toBe('rolled-back');
    expect(rolledBack.error).toMatchObject({ code: 'MIGRATION_FAILED', migration: 'V5__orders_amount_positive.sql' });
    // One migration per invocation: V4's MigrateProduction succeeds, V5's (the last one) fails.
    expect(rolledBack.timeline.filter((t) => t.state === 'MigrateProduction').at(-1)?.error).toBeTruthy();

    expect((await request('/api/runs/no-such-run')).status).toBe(404);
    expect(errorCode(await request('/api/runs'))).toBe('BAD_REQUEST');
  });

  it('lists restorable snapshots with the version each holds, the record of quiesced APIs, and rehearsals', async () => {
    const snapshots = await get<SnapshotView[]>(`/api/snapshots?database=${db.database}`);
    expect(snapshots).toEqual([expect.objectContaining({ snapshotId: upgrade.run.snapshotId, kind: 'pre-upgrade', schemaVersion: '2' })]);

    const quiesced = await get<QuiesceView[]>(`/api/quiesced?database=${db.database}`);
    expect(quiesced).toEqual([expect.objectContaining({ apiId: `db-role:${shop.appRole}`, status: 'resumed', stillQuiesced: false })]);
    expect(quiesced[0]?.prior).toMatchObject({ kind: 'db-role', role: shop.appRole, canLogin: true });
    expect(quiesced[0]?.resumedAt).toBeTruthy();

    const left = (await get<QuiesceView[]>(`/api/quiesced?database=${other.database}`)).filter((q) => q.stillQuiesced);
    expect(left).toEqual([expect.objectContaining({ status: 'quiesced', runActive: false, apiId: 'http:http://ops:***@127.0.0.1:9/maintenance' })]);
    expect(left[0]?.prior).toEqual({ mode: 'normal', token: '[redacted]', note: 'postgres://app:***@db/shop' });

    const rehearsal = defined((await get<RehearsalView[]>(`/api/rehearsals?database=${db.database}`))[0], 'the rehearsal');
    expect(rehearsal).toMatchObject({ runId: upgrade.run.runId, fromVersion: '2', toVersion: '3', status: 'succeeded' });
    expect(rehearsal.migrations.map((m) => m.script)).toEqual(['V2.1__index_order_status.sql', 'V3__customer_order_totals.ts']);
    expect(rehearsal.migrations.every((m) => m.executionMs >= 0)).toBe(true);
    expect(rehearsal.predictedWindowMs).toBeGreaterThan(0);
  });

  it('refuses a restore without the token, from another origin or host, and of a foreign or unknown snapshot', async () => {
    const body = { database: db.database, snapshotId: upgrade.run.snapshotId, confirm: db.database };
    const noToken = await request('/api/restore', { method: 'POST', body, headers: { Origin: origin, 'Sec-Fetch-Site': 'same-origin' } });
    expect([noToken.status, errorCode(noToken)]).toEqual([403, 'FORBIDDEN_TOKEN']);
    expect((await restore(body, { 'X-Safeshift-Token': 'x'.repeat(43) })).status).toBe(403);
    const evil = await restore(body, { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' });
    expect([evil.status, errorCode(evil)]).toEqual([403, 'FORBIDDEN_ORIGIN']);
    expect((await restore(body, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await restore(body, { 'Sec-Fetch-Site': 'same-site' })).status).toBe(403);
    const noOrigin = await request('/api/restore', { method: 'POST', body, headers: { 'X-Safeshift-Token': server.token } });
    expect(noOrigin.status).toBe(403);
    // DNS rebinding: a name the attacker owns, pointed at 127.0.0.1, is not one of the console's hosts.
    const rebound = await request('/api/databases', { headers: { Host: `evil.example:${new URL(server.url).port}` } });
    expect([rebound.status, errorCode(rebound)]).toEqual([403, 'FORBIDDEN_HOST']);

    const foreign = await restore({ database: db.database, snapshotId: failed.run.snapshotId, confirm: db.database });
    expect([foreign.status, errorCode(foreign)]).toEqual([422, 'SNAPSHOT_FOREIGN']);
    const unknown = await restore({ database: db.database, snapshotId: 'ss-pre-nothing-000000000000', confirm: db.database });
    expect([unknown.status, errorCode(unknown)]).toEqual([404, 'SNAPSHOT_NOT_FOUND']);
    const mistyped = await restore({ ...body, confirm: `${db.database}x` });
    expect([mistyped.status, errorCode(mistyped)]).toEqual([400, 'CONFIRMATION_MISMATCH']);
    expect((await restore({ ...body, confirm: undefined })).status).toBe(400);
    expect((await restore(JSON.stringify(body), { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await request('/api/restore')).status).toBe(405);

    // None of that started anything.
    expect((await get<RunView[]>(`/api/runs?database=${db.database}`)).map((r) => r.runId)).toEqual([upgrade.run.runId]);
  });

  it("restores a snapshot: 202 with the run id, a second press refused, progress streamed until the data is the snapshot's", async () => {
    const body = { database: db.database, snapshotId: upgrade.run.snapshotId, confirm: db.database };
    const started = await restore(body);
    expect(started.status, started.text).toBe(202);
    const { runId } = started.json as { runId: string };
    const again = await restore(body);
    expect([again.status, errorCode(again)]).toEqual([409, 'LOCKED']);

    const stream = await events(runId);
    const end = defined(stream.at(-1), 'the last event');
    expect(end.event).toBe('end');
    expect(end.data, JSON.stringify(end.data.error)).toMatchObject({
      runId,
      kind: 'restore',
      status: 'succeeded',
      toVersion: '2',
      snapshotId: upgrade.run.snapshotId,
    });
    const states = defined(stream.filter((e) => e.event === 'progress').at(-1), 'a progress event').data.states?.map((s) => s.state);
    expect(states).toEqual(expect.arrayContaining(['Preflight', 'Quiesce', 'StartSafetySnapshot', 'SwapRestoredInForward', 'Resume', 'Succeeded']));

    expect(await db.withClient(productionState)).toEqual(original);
    const mine = defined(
      (await get<DatabaseView[]>('/api/databases')).find((d) => d.name === db.database),
      `the database ${db.database}`,
    );
    expect(mine).toMatchObject({ schemaVersion: '2' });
    expect(mine.lastRun).toMatchObject({ runId, kind: 'restore', status: 'succeeded' });
    const safety = (await get<SnapshotView[]>(`/api/snapshots?database=${db.database}`)).find((s) => s.kind === 'safety');
    expect(safety).toMatchObject({ runId, schemaVersion: '3', snapshotId: end.data.safetySnapshotId });
    expect(((await request(`/api/quiesced?database=${db.database}`)).json as QuiesceView[]).every((q) => !q.stillQuiesced)).toBe(true);
  }, 120_000);

  it("never shows a secret: not the server's password, the app role's, or those planted in the ledger", async () => {
    const serverPassword = decodeURIComponent(new URL(testServerUrl()).password);
    expect(serverPassword.length).toBeGreaterThan(3);
    for (const p of ['/', '/api/info', '/api/databases', `/api/quiesced?database=${other.database}`, `/api/runs?database=${other.database}`]) await request(p);
    const everything = seen.join('\n');
    expect(seen.length).toBeGreaterThan(20);
    for (const secret of [serverPassword, shop.appPassword, PLANTED.password, PLANTED.token]) {
      expect(everything.includes(secret), 'a secret was rendered').toBe(false);
    }
  });
});
