import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { App } from 'aws-cdk-lib';
import { ExampleStack } from '../cdk/example-stack.ts';
import { STEP_NEEDS } from '../lambdas/step-needs.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import type { Benchmark, Goal } from './types.ts';

/** One step Lambda as the SafeUpgrade construct bundled it. */
export interface StepBundle {
  readonly step: string;
  /** The asset folder CDK uploads: index.mjs, and for some steps migrations/, verify/, the parser's .wasm. */
  readonly dir: string;
  /** index.mjs alone. */
  readonly handlerBytes: number;
  /** Every file of the folder. */
  readonly totalBytes: number;
  /** The folder deflated file by file, as in the zip Lambda stores ("Code size" in the console, near enough). */
  readonly zippedBytes: number;
}

const SIZE_GOAL = 1024 * 1024;
const INIT_GOAL_MS = 150;

/**
 * Synthesizes the example app with real bundling (as the construct bundles: one esbuild build for
 * the handlers, minified ESM with the AWS SDK inside, then each step's migrations and parser) into
 * a temporary cloud assembly, and returns each step's asset folder. The caller removes `outdir`.
 *
 * @example
 * ```ts
 * const { outdir, bundles } = synthStepBundles();
 * bundles.find((b) => b.step === 'migrate')!.dir; // …/asset.<hash>
 * ```
 */
export function synthStepBundles(): { outdir: string; bundles: StepBundle[] } {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'safeshift-cdk-out-'));
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  const stack = new ExampleStack(app, 'SafeshiftBench');
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, { Type: string; Properties: { Description?: string }; Metadata?: Record<string, string> }>;
  };
  const bundles: StepBundle[] = [];
  for (const resource of Object.values(template.Resources)) {
    const step = /^safeshift (\w+) step$/.exec(resource.Properties.Description ?? '')?.[1];
    const asset = resource.Metadata?.['aws:asset:path'];
    if (resource.Type !== 'AWS::Lambda::Function' || !step || !asset) continue;
    const dir = path.join(outdir, asset);
    const files = listFiles(dir);
    bundles.push({
      step,
      dir,
      handlerBytes: statSync(path.join(dir, 'index.mjs')).size,
      totalBytes: files.reduce((t, f) => t + statSync(f).size, 0),
      zippedBytes: files.reduce((t, f) => t + deflateRawSync(readFileSync(f), { level: 9 }).length + 100, 0),
    });
  }
  return { outdir, bundles };
}

/**
 * The module initialisation time of a bundle: a fresh `node` imports its index.mjs and reports how
 * long the import took (what Lambda counts as Init Duration, less the runtime's own start).
 */
export function initTimeMs(dir: string): number {
  const script =
    `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(path.join(dir, 'index.mjs')).href)}); ` +
    `process.stdout.write(String(performance.now() - t));`;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }));
}

/**
 * Each step Lambda's bundle size and module initialisation time, bundled exactly as `cdk synth`
 * bundles them. Goals: under 1 MB and under 150 ms each.
 */
export const lambdaBundles: Benchmark = {
  name: 'lambda-bundles',
  keywords: ['lambda', 'bundle', 'cdk', 'aws'],
  description: 'each step Lambda bundled as the SafeUpgrade construct does: size and module initialisation time',
  run(ctx) {
    const rounds = ctx.quick ? 1 : 5;
    ctx.progress(`lambda-bundles: synthesizing the example app with bundling (esbuild, ${Object.keys(STEP_NEEDS).length} functions)…`);
    const { outdir, bundles } = synthStepBundles();
    try {
      const rows: string[][] = [];
      const goals: Goal[] = [];
      for (const b of bundles.sort((x, y) => x.step.localeCompare(y.step))) {
        const times: number[] = [];
        for (let r = 0; r < rounds; r++) times.push(initTimeMs(b.dir));
        const init = median(times);
        ctx.progress(`lambda-bundles: ${b.step}: ${kib(b.zippedBytes)} KiB zipped, init ${ms(init)} ms`);
        rows.push([b.step, kib(b.handlerBytes), kib(b.totalBytes), kib(b.zippedBytes), ms(init)]);
        goals.push({
          description: `${b.step}: package under 1 MB zipped`,
          met: b.zippedBytes < SIZE_GOAL,
          detail: `${kib(b.zippedBytes)} KiB zipped (${kib(b.totalBytes)} KiB unzipped)`,
        });
        goals.push({
          description: `${b.step}: module initialisation under ${INIT_GOAL_MS} ms`,
          met: init < INIT_GOAL_MS,
          detail: `${ms(init)} ms (median of ${rounds})`,
        });
      }
      return Promise.resolve({
        title: `lambda-bundles: the ${bundles.length} step Lambdas (Node ${process.versions.node} here; Lambda runs nodejs24.x on arm64)`,
        lines: [
          ...formatTable(['step', 'index.mjs KiB', 'package KiB', 'zipped KiB', 'init ms'], rows),
          '',
          'package: everything uploaded (migrations/, verify/, and libpg-query.wasm, 1.7 MB, for preflight and migrate).',
          'init: import of index.mjs in a fresh node. The SQL parser compiles its WebAssembly after the import resolves,',
          'so for preflight and migrate that cost falls into the first invocation, not into this figure.',
        ],
        goals,
      });
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  },
};

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(0);
}
