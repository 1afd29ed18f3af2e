import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, FileSystem } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { buildSync, type BuildOptions } from 'esbuild';
import { BundleFolders } from '../lambdas/environment.ts';
import { STEP_NEEDS, handlerFileOf } from '../lambdas/step-needs.ts';
import type { StepName } from '../src/steps/registry.ts';
import { ESM_REQUIRE_BANNER, sqlParserWasm, type StagedMigrations } from './migrations-asset.ts';

/** The folder that holds lambdas/, src/ and package-lock.json. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LAMBDAS_DIR = path.join(PACKAGE_ROOT, 'lambdas');

/** The handler's file in every step's package: `Handler: index.handler`. */
export const HANDLER_FILE = 'index.mjs';

/**
 * The esbuild options of the step handlers: what NodejsFunction ran for each of them, one `esbuild`
 * process per step (`--bundle --platform=node --format=esm --minify --main-fields=module,main`, the
 * banner, the AWS SDK inside, no source map), for many entry points at once. Without code
 * splitting, esbuild still links and writes each entry point on its own, so every handler is the
 * same file, byte for byte, as when it was bundled alone: it holds only what its step imports.
 *
 * The steps that do not parse SQL get `lambdas/no-sql-parser.ts` instead of `libpg-query`. An alias
 * holds for a whole build, so they are one build and the steps that parse SQL another.
 */
export function stepBuildOptions(steps: readonly StepName[], target: string): BuildOptions & { write: false; outdir: string } {
  const [first] = steps;
  if (first === undefined) throw new Error('stepBuildOptions: no steps to build');
  const parser = groupOf(first);
  if (steps.some((s) => groupOf(s) !== parser))
    throw new Error(`stepBuildOptions: ${steps.join(', ')} mix steps that parse SQL with steps that do not; an esbuild alias holds for a whole build`);
  return {
    entryPoints: steps.map((step) => ({ in: path.join(LAMBDAS_DIR, handlerFileOf(step)), out: step })),
    // Nothing is written: the outputs stay in memory until each step's asset folder asks for its file.
    write: false,
    outdir: path.join(PACKAGE_ROOT, '.step-bundles'),
    outExtension: { '.js': '.mjs' },
    absWorkingDir: PACKAGE_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target,
    minify: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    ...(parser ? {} : { alias: { 'libpg-query': path.join(LAMBDAS_DIR, 'no-sql-parser.ts') } }),
    logLevel: 'warning',
  };
}

/** One build's handlers by step. */
type Handlers = ReadonlyMap<StepName, Uint8Array>;

/** The builds of an app, by group and target, made at its first bundled step and kept while the app lives. */
const buildsByApp = new WeakMap<IConstruct, Map<string, Handlers>>();

/**
 * The bundled handler of a step: the first step of an app to be bundled builds every step of its
 * group (parser or not) in one esbuild call; the others read theirs from that build.
 */
function bundledHandler(scope: IConstruct, step: StepName, target: string): Uint8Array {
  const app = scope.node.root;
  let builds = buildsByApp.get(app);
  if (!builds) buildsByApp.set(app, (builds = new Map<string, Handlers>()));
  const key = `${groupOf(step)}:${target}`;
  let handlers = builds.get(key);
  if (!handlers) {
    const steps = (Object.keys(STEP_NEEDS) as StepName[]).filter((s) => groupOf(s) === groupOf(step));
    const options = stepBuildOptions(steps, target);
    const result = buildSync(options);
    const byPath = new Map(result.outputFiles.map((f) => [f.path, f.contents]));
    const built = new Map<StepName, Uint8Array>();
    for (const s of steps) {
      const file = path.join(options.outdir, `${s}.mjs`);
      const contents = byPath.get(file);
      if (!contents) throw new Error(`esbuild wrote no ${file} for the ${s} step (it wrote ${[...byPath.keys()].join(', ')})`);
      built.set(s, contents);
    }
    builds.set(key, (handlers = built));
  }
  const handler = handlers.get(step);
  if (!handler) throw new Error(`the build of the ${step} step's group has no handler for it`);
  return handler;
}

/** What a staged folder holds, by content, so equal folders give equal keys (computed once per folder). */
const stagedFingerprints = new WeakMap<StagedMigrations, string>();
function stagedFingerprint(staged: StagedMigrations): string {
  let fingerprint = stagedFingerprints.get(staged);
  if (fingerprint === undefined) stagedFingerprints.set(staged, (fingerprint = FileSystem.fingerprint(staged.dir)));
  return fingerprint;
}

/**
 * A step's Lambda code: a folder with its handler as `index.mjs` and, as STEP_NEEDS says, the
 * migrations (with `.ts` ones compiled) and the SQL parser's WebAssembly file, or the verify checks.
 *
 * The asset is bundled the way CDK bundles any asset (`cdk synth` bundles, a test with
 * `aws:cdk:bundling-stacks: []` does not), with local bundling only: nothing runs in Docker and
 * nothing is downloaded. Its hash is the output's (AssetHashType.OUTPUT), as NodejsFunction's was,
 * so the same sources give the same asset hash.
 *
 * @example
 * ```ts
 * new nodejs.NodejsFunction(this, 'Function', { code: stepCode(this, 'finish', staged, 'node24'), handler: 'index.handler', … });
 * ```
 */
export function stepCode(scope: IConstruct, step: StepName, staged: StagedMigrations, target: string): lambda.AssetCode {
  const needs = STEP_NEEDS[step];
  const copies = needs.migrations === true || needs.verify === true;
  return lambda.Code.fromAsset(PACKAGE_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: local bundling always succeeds or throws.
      image: DockerImage.fromRegistry('dummy'),
      // Never run either. It is part of the key under which CDK caches a staged asset in the process,
      // so it names what makes this asset what it is: the step, its target and the files it copies.
      command: ['safeshift-step-bundle', step, target, ...(copies ? [stagedFingerprint(staged)] : [])],
      local: {
        tryBundle(outputDir: string): boolean {
          writeFileSync(path.join(outputDir, HANDLER_FILE), bundledHandler(scope, step, target));
          if (needs.migrations) {
            cpSync(path.join(staged.dir, BundleFolders.migrations), path.join(outputDir, BundleFolders.migrations), { recursive: true });
            cpSync(sqlParserWasm(), path.join(outputDir, path.basename(sqlParserWasm())));
          }
          if (needs.verify) cpSync(path.join(staged.dir, BundleFolders.verify), path.join(outputDir, BundleFolders.verify), { recursive: true });
          return true;
        },
      },
    },
  });
}

/** `node24` for `nodejs24.x`: the esbuild target of a Lambda Node.js runtime. */
export function esbuildTarget(runtime: lambda.Runtime): string {
  const major = /^nodejs(\d+)/.exec(runtime.name)?.[1];
  if (!major) throw new Error(`${runtime.name} is not a Node.js runtime`);
  return `node${major}`;
}

function groupOf(step: StepName): boolean {
  return STEP_NEEDS[step].migrations === true;
}
