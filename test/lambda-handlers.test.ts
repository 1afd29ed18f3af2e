import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageMigrations } from '../cdk/migrations-asset.ts';
import { awsStepContext, createStepHandler } from '../lambdas/aws-context.ts';
import { readStepSettings, type StepSettings } from '../lambdas/environment.ts';
import { STEP_NEEDS, handlerFileOf, type StepPort } from '../lambdas/step-needs.ts';
import { openLocalPorts, runWorkflow, type LocalPorts } from '../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { LockedError } from '../src/core/errors.ts';
import { silentLogger } from '../src/core/logger.ts';
import type { Connector, Ledger, QuiescerFactory, RunRecord } from '../src/ports.ts';
import type { StepContext } from '../src/steps/context.ts';
import { runStep, STEPS, type StepName } from '../src/steps/registry.ts';
import type { RunInput } from '../src/steps/state.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { EXAMPLE_MIGRATIONS, shopTemplate, type ShopTemplate } from './support/shop.ts';

/**
 * The step Lambdas' handlers: what they return, how they fail (an error named by its stable code),
 * what they refuse, which ports each step really calls (checked against STEP_NEEDS by running every
 * workflow locally), that no secret reaches a state's input or output, and that a `.ts` migration
 * runs from its bundle-time compiled copy.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const SETTINGS: StepSettings = {
  ledgerTable: 'ledger',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-AbCdEf',
  databaseKind: 'instance',
  databaseId: 'shop',
  history: { schema: 'public', table: 'safeshift_schema_history' },
  quiesce: ['lambda:orders-api'],
};

/** A ledger that remembers runs and can be told to fail. */
function fakeLedger(overrides: Partial<Ledger> = {}): Ledger {
  const runs = new Map<string, RunRecord>();
  const ledger: Partial<Ledger> = {
    getRun: (id) => Promise.resolve(runs.get(id)),
    startRun: (run) => {
      const kept = runs.get(run.runId) ?? run;
      runs.set(run.runId, kept);
      return Promise.resolve(kept);
    },
    updateRun: (id, patch) => {
      const r = { ...defined(runs.get(id), `the run ${id}`), ...patch };
      runs.set(id, r);
      return Promise.resolve(r);
    },
    releaseLock: async () => {},
    getLock: () => Promise.resolve(undefined),
    listRuns: () => Promise.resolve([]),
    listQuiesced: () => Promise.resolve([]),
    ...overrides,
  };
  return ledger as Ledger;
}

/** A connector the test's steps never reach. */
const unusedConnector: Connector = {
  connect: () => Promise.reject(new Error('not reached')),
  endRunSessions: () => Promise.resolve(0),
  disconnectAll: async () => {},
};

/** Quiescers whose preflight checks pass: each can be quiesced, and is running (not already stopped). */
const checkedQuiescers: QuiescerFactory = {
  create: (spec) => ({
    id: spec,
    check: async () => {},
    capture: () => Promise.resolve(null),
    quiesce: async () => {},
    resume: async () => {},
    stillQuiesced: () => Promise.resolve({ holds: false, evidence: 'reserved concurrency is not set' }),
  }),
};

const event = (run: Partial<RunInput> = {}, args: Record<string, unknown> = {}) => ({
  state: { run: { runId: 'run-1', kind: 'upgrade', ...run } as RunInput },
  args,
});

describe('step handlers', () => {
  it("returns the step's output, with the deployment's database filled in", async () => {
    const ledger = fakeLedger();
    const handler = createStepHandler('finish', { ledger: () => ledger, connector: () => unusedConnector }, { settings: () => SETTINGS, bundleDir: ROOT });
    expect(await handler(event({}, { status: 'succeeded' }))).toEqual({ status: 'succeeded' });
    expect(await ledger.getRun('run-1')).toMatchObject({ runId: 'run-1', database: 'shop', status: 'succeeded' });
  });

  it('fails with an error named by the stable code, its message the JSON the finishing step records', async () => {
    const ledger = fakeLedger({ acquireLock: () => Promise.reject(new LockedError('database shop is locked by run other-run')) });
    const handler = createStepHandler(
      'preflight',
      { ledger: () => ledger, connector: () => unusedConnector, quiescers: () => checkedQuiescers },
      { settings: () => SETTINGS, bundleDir: ROOT },
    );
    const error = await handler(event()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('LOCKED');
    expect(JSON.parse((error as Error).message)).toMatchObject({ code: 'LOCKED', message: 'database shop is locked by run other-run', outcome: 'refused' });
  });

  it('names a dropped connection Transient, which the state machines retry', async () => {
    const ledger = fakeLedger({ updateRun: () => Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })) });
    const handler = createStepHandler('finish', { ledger: () => ledger, connector: () => unusedConnector }, { settings: () => SETTINGS, bundleDir: ROOT });
    await expect(handler(event({}, { status: 'succeeded' }))).rejects.toMatchObject({ name: 'Transient' });
  });

  it.each([
    ['another database', event({ database: 'billing' }), /upgrades database shop, not billing/],
    ['a quiescer the deployment was not given', event({ quiesce: ['lambda:payments'] }), /quiescer lambda:payments is not configured/],
    ['no run', { state: {} }, /state machine input must be/],
  ])('refuses a run naming %s (BAD_OPTION)', async (_label, input, message) => {
    const handler = createStepHandler(
      'finish',
      { ledger: () => fakeLedger(), connector: () => unusedConnector },
      { settings: () => SETTINGS, bundleDir: ROOT },
    );
    const error = (await handler(input as never).catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('BAD_OPTION');
    expect((JSON.parse(error.message) as { message: string }).message).toMatch(message);
  });

  it('will not be built with other ports than STEP_NEEDS lists', () => {
    expect(() => createStepHandler('recordRehearsal', { ledger: () => fakeLedger(), fleet: () => ({}) as never })).toThrow(
      /recordRehearsal handler bundles ports fleet, ledger but STEP_NEEDS lists ledger/,
    );
  });

  it('reports a port a step was built without as a bug, naming it', () => {
    const ctx = awsStepContext('finish', { ledger: () => fakeLedger() }, SETTINGS, ROOT, silentLogger);
    expect(() => ctx.fleet.startSnapshot('shop', 's', { runId: 'r', database: 'shop', kind: 'safety' })).toThrow(
      /finish step called fleet\.startSnapshot, but its Lambda was built without the fleet port/,
    );
    return expect(ctx.connector.disconnectAll('shop')).resolves.toBeUndefined();
  });

  it.each(Object.keys(STEPS))('%s has a handler in lambdas/ bundling exactly its ports', async (step) => {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'lambdas', handlerFileOf(step as StepName))).href)) as { handler?: unknown };
    expect(typeof mod.handler).toBe('function');
  });

  it('reads its settings from the environment, naming a missing or bad variable', () => {
    const env = {
      SAFESHIFT_LEDGER_TABLE: 't',
      SAFESHIFT_DB_SECRET_ARN: 'arn:s',
      SAFESHIFT_DB_KIND: 'cluster',
      SAFESHIFT_DB_ID: 'shop',
      SAFESHIFT_QUIESCE: '["lambda:a"]',
    };
    expect(readStepSettings(env)).toMatchObject({
      databaseKind: 'cluster',
      quiesce: ['lambda:a'],
      history: { schema: 'public', table: 'safeshift_schema_history' },
    });
    expect(() => readStepSettings({ ...env, SAFESHIFT_DB_KIND: 'serverless' })).toThrow(/SAFESHIFT_DB_KIND is "serverless"/);
    expect(() => readStepSettings({ ...env, SAFESHIFT_LEDGER_TABLE: '' })).toThrow(/SAFESHIFT_LEDGER_TABLE is not set/);
    expect(() => readStepSettings({ ...env, SAFESHIFT_QUIESCE: 'lambda:a' })).toThrow(/SAFESHIFT_QUIESCE is not JSON/);
  });
});

describe('compiled .ts migrations', () => {
  it('imports a .ts migration from the copy compiled at bundle time, keeping the .ts file for its name and checksum', () => {
    const staged = stageMigrations(EXAMPLE_MIGRATIONS, path.join(EXAMPLE_MIGRATIONS, '..', 'verify'));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safeshift-loader-'));
    buildSync({
      entryPoints: [path.join(ROOT, 'lambdas', 'compiled-migrations.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: path.join(dir, 'loader.mjs'),
      logLevel: 'error',
    });
    const migrations = path.join(staged.dir, 'migrations');
    const script = path.join(dir, 'check.mjs');
    writeFileSync(
      script,
      `
      import { pathToFileURL } from 'node:url';
      import { useCompiledMigrations } from './loader.mjs';
      useCompiledMigrations(${JSON.stringify(migrations)});
      const mod = await import(pathToFileURL(${JSON.stringify(path.join(migrations, 'V3__customer_order_totals.ts'))}).href);
      console.log(typeof mod.up);
    `,
    );
    // A plain node, without tsx: without the hook it could not load a .ts file at all.
    expect(execFileSync(process.execPath, [script], { encoding: 'utf8' }).trim()).toBe('function');
    expect(staged.files.map((f) => f.path)).toContain('migrations/V3__customer_order_totals.ts');
    expect(staged.files.map((f) => f.path)).toContain('verify/orders_reference_customers.sql');
  });
});

describe('every workflow, run locally with recording ports', () => {
  let shop: ShopTemplate;
  const used = new Map<string, Set<StepPort>>();
  const payloads: string[] = [];

  /** The ports of a context, each recording which step called it. */
  function recording(ctx: StepContext, step: StepName): StepContext {
    const watch = <P extends object>(port: P, name: StepPort): P =>
      new Proxy(port, {
        get: (target, member, receiver) => {
          const value = Reflect.get(target, member, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            // disconnectAll is a no-op on AWS, so it needs no connector there.
            if (!(name === 'connector' && member === 'disconnectAll')) defined(used.get(step), `the ports of ${step}`).add(name);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    if (!used.has(step)) used.set(step, new Set());
    return {
      ...ctx,
      fleet: watch(ctx.fleet, 'fleet'),
      connector: watch(ctx.connector, 'connector'),
      ledger: watch(ctx.ledger, 'ledger'),
      quiescers: watch(ctx.quiescers, 'quiescers'),
    };
  }

  async function run(input: Omit<RunInput, 'runId' | 'database'>, failAt?: string): Promise<{ status: string; report: string }> {
    const db = await shop.copy('lh');
    const ports: LocalPorts = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
    let failed = false;
    const invoke: StepInvoker = async (step, stepInput, state, ctx) => {
      payloads.push(JSON.stringify(stepInput));
      if (state === failAt && !failed) {
        failed = true;
        throw new Error(`injected failure at ${state}`);
      }
      const output = await runStep(step, stepInput, recording(ctx, step));
      payloads.push(JSON.stringify(output ?? null));
      return output;
    };
    try {
      const report = await runWorkflow(ports, { ...input, database: db.database, quiesce: [`db-role:${shop.appRole}`] }, { invoke });
      return { status: report.run.status, report: JSON.stringify(report) };
    } finally {
      await ports.close();
    }
  }

  const outcomes: Record<string, { status: string; report: string }> = {};
  beforeAll(async () => {
    shop = await shopTemplate(50);
    outcomes.inPlace = await run({ kind: 'upgrade', strategy: 'in-place', rehearsal: true });
    outcomes.swap = await run({ kind: 'upgrade', strategy: 'swap', rehearsal: false });
    outcomes.rolledBack = await run({ kind: 'upgrade', strategy: 'in-place', rehearsal: false }, 'VerifyProduction');
    outcomes.rehearsalFailed = await run({ kind: 'rehearsal', strategy: 'in-place', rehearsal: true }, 'MigrateRehearsalClone');
    outcomes.rehearsal = await run({ kind: 'rehearsal', strategy: 'in-place', rehearsal: true });
    const snapshotId = defined((JSON.parse(outcomes.inPlace.report) as { run: RunRecord }).run.snapshotId, "the in-place upgrade's snapshot id");
    // A restore of another copy's snapshot is refused (SNAPSHOT_FOREIGN): preflight still runs.
    outcomes.restore = await run({ kind: 'restore', strategy: 'in-place', rehearsal: false, snapshotId });
  }, 600_000);
  afterAll(async () => {
    // Unset when beforeAll failed before making it.
    await (shop as ShopTemplate | undefined)?.dispose();
  });

  it('ran the paths it meant to', () => {
    expect(Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [k, v.status]))).toEqual({
      inPlace: 'succeeded',
      swap: 'succeeded',
      rolledBack: 'rolled-back',
      rehearsalFailed: 'refused',
      rehearsal: 'succeeded',
      restore: 'refused',
    });
  });

  it('every step calls only the ports STEP_NEEDS gives its Lambda (and so its IAM role)', () => {
    expect([...used.keys()].sort()).toEqual(Object.keys(STEPS).sort());
    for (const [step, ports] of used) {
      expect(
        [...ports].filter((p) => !STEP_NEEDS[step as StepName].ports.includes(p)),
        step,
      ).toEqual([]);
    }
  });

  it("no secret appears in any state's input or output, nor in the recorded run", () => {
    const serverPassword = decodeURIComponent(new URL(testServerUrl()).password);
    const secrets = [shop.appPassword, ...(serverPassword ? [serverPassword] : [])];
    expect(payloads.length).toBeGreaterThan(50);
    for (const text of [...payloads, ...Object.values(outcomes).map((o) => o.report)]) {
      for (const secret of secrets) expect(text.includes(secret), 'a password in a state payload').toBe(false);
    }
  });
});
