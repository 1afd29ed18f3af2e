import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthStepBundles, type StepBundle } from '../bench/lambda-bundles.ts';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import { STEPS, type StepName } from '../src/steps/registry.ts';

/**
 * The step Lambdas as `cdk synth` really bundles them (esbuild, command hooks): what each package
 * holds, and that a bundle loads and answers in a plain `node` (no tsx, no node_modules).
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

/** Runs a handler of a bundle in a fresh node with the deployment's environment; prints the outcome. */
function invoke(dir: string, event: unknown): { ok: boolean; name?: string; message?: string; value?: unknown } {
  const script = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(path.join(dir, 'index.mjs')).href)});
    try { process.stdout.write(JSON.stringify({ ok: true, value: await handler(${JSON.stringify(event)}) })); }
    catch (e) { process.stdout.write(JSON.stringify({ ok: false, name: e.name, message: e.message })); }`;
  const env = {
    ...process.env, LAMBDA_TASK_ROOT: dir, AWS_REGION: 'eu-west-1', SAFESHIFT_LEDGER_TABLE: 'ledger', SAFESHIFT_DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:s',
    SAFESHIFT_DB_KIND: 'instance', SAFESHIFT_DB_ID: 'shop', SAFESHIFT_QUIESCE: '[]',
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
    expect(readdirSync(path.join(bundles.get('verify')!.dir, 'verify'))).toEqual(['orders_reference_customers.sql']);
  });

  it('a bundle loads in a plain node and refuses a run for another database with BAD_OPTION', () => {
    for (const step of ['migrate', 'finish'] as const) {
      const out = invoke(bundles.get(step)!.dir, { state: { run: { runId: 'r1', kind: 'upgrade', database: 'billing' } }, args: {} });
      expect(out, step).toMatchObject({ ok: false, name: 'BAD_OPTION' });
      expect(JSON.parse(out.message!).message).toMatch(/upgrades database shop, not billing/);
    }
  });

  it('each package is under 1 MB zipped', () => {
    for (const [step, b] of bundles) expect(b.zippedBytes, step).toBeLessThan(1024 * 1024);
  });
});
