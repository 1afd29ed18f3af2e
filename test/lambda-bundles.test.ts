import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthStepBundles, type StepBundle } from '../bench/lambda-bundles.ts';
import { esbuildTarget, stepBuildOptions } from '../cdk/step-bundles.ts';
import { STEP_RUNTIME } from '../cdk/step-lambda.ts';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import { STEPS, type StepName } from '../src/steps/registry.ts';
import { defined } from './support/defined.ts';

/**
 * The step Lambdas as `cdk synth` really bundles them (one esbuild build for the handlers, then each
 * step's files): what each package holds, and that a bundle loads and answers in a plain `node` (no
 * tsx, no node_modules).
 */
let outdir: string;
let bundles: Map<string, StepBundle>;

beforeAll(() => {
  const synth = synthStepBundles();
  outdir = synth.outdir;
  bundles = new Map(synth.bundles.map((b) => [b.step, b]));
}, 300_000);
afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

/** The directory of a step's bundle. */
const bundleDir = (step: string) => defined(bundles.get(step), `the bundle of ${step}`).dir;

/** Runs a handler of a bundle in a fresh node with the deployment's environment; prints the outcome. */
function invoke(dir: string, event: unknown): { ok: boolean; name?: string; message?: string; value?: unknown } {
  const script = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(path.join(dir, 'index.mjs')).href)});
    try { process.stdout.write(JSON.stringify({ ok: true, value: await handler(${JSON.stringify(event)}) })); }
    catch (e) { process.stdout.write(JSON.stringify({ ok: false, name: e.name, message: e.message })); }`;
  const env = {
    ...process.env,
    LAMBDA_TASK_ROOT: dir,
    AWS_REGION: 'eu-west-1',
    SAFESHIFT_LEDGER_TABLE: 'ledger',
    SAFESHIFT_DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:s',
    SAFESHIFT_DB_KIND: 'instance',
    SAFESHIFT_DB_ID: 'shop',
    SAFESHIFT_QUIESCE: '[]',
  };
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env, cwd: dir });
  return JSON.parse(out.slice(out.lastIndexOf('{"ok"'))) as { ok: boolean; name?: string; message?: string };
}

describe('step Lambda bundles', () => {
  it('one per step', () => {
    expect([...bundles.keys()].sort()).toEqual(Object.keys(STEPS).sort());
  });

  it('bundles the migrations (with .ts ones compiled) and the SQL parser only where STEP_NEEDS says', () => {
    for (const [step, b] of bundles) {
      const needs = STEP_NEEDS[step as StepName];
      const files = readdirSync(b.dir).sort();
      expect(files.includes('libpg-query.wasm'), step).toBe(needs.migrations === true);
      expect(files.includes('migrations'), step).toBe(needs.migrations === true);
      expect(files.includes('verify'), step).toBe(needs.verify === true);
      if (needs.migrations) {
        expect(existsSync(path.join(b.dir, 'migrations', 'V3__customer_order_totals.ts'))).toBe(true);
        expect(existsSync(path.join(b.dir, 'migrations', '.compiled', 'V3__customer_order_totals.mjs'))).toBe(true);
      }
    }
    expect(readdirSync(path.join(bundleDir('verify'), 'verify'))).toEqual(['orders_reference_customers.sql']);
  });

  it('each handler is the file esbuild makes of its step alone: the shared build adds nothing of the other steps', () => {
    // One step of each build: the steps that parse SQL and the ones bundled with the stand-in parser.
    for (const step of ['finish', 'migrate'] as const) {
      const [alone] = buildSync(stepBuildOptions([step], esbuildTarget(STEP_RUNTIME))).outputFiles;
      const built = defined(alone, `the esbuild output for ${step}`).contents;
      expect(Buffer.from(built).equals(readFileSync(path.join(bundleDir(step), 'index.mjs'))), step).toBe(true);
    }
  });

  it('a bundle loads in a plain node and refuses a run for another database with BAD_OPTION', () => {
    for (const step of ['migrate', 'finish'] as const) {
      const out = invoke(bundleDir(step), { state: { run: { runId: 'r1', kind: 'upgrade', database: 'billing' } }, args: {} });
      expect(out, step).toMatchObject({ ok: false, name: 'BAD_OPTION' });
      expect((JSON.parse(defined(out.message, 'the error message')) as { message: string }).message).toMatch(/upgrades database shop, not billing/);
    }
  });

  it('each package is under 1 MB zipped', () => {
    for (const [step, b] of bundles) expect(b.zippedBytes, step).toBeLessThan(1024 * 1024);
  });
});
