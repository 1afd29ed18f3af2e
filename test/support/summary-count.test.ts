import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countResults, summaryLine, type CountedCase, type CountedSuite } from './summary-count.ts';

/**
 * The closing summary line counts what vitest counts: a file that fails by itself (import,
 * beforeAll) is one failure, and the tests its beforeAll kept from running are not "skipped".
 * No database: the unit tier runs it.
 */
const test = (state: string): CountedCase => ({ type: 'test', result: () => ({ state }) });
const suite = (children: (CountedCase | CountedSuite)[], errors: unknown[] = [], type: 'module' | 'suite' = 'suite'): CountedSuite => {
  const failed = errors.length > 0 || children.some((c) => (c.type === 'test' ? c.result().state === 'failed' : c.state() === 'failed'));
  return { type, state: () => (failed ? 'failed' : 'passed'), errors: () => errors, children };
};
const file = (children: (CountedCase | CountedSuite)[], errors: unknown[] = []) => suite(children, errors, 'module');

describe('countResults', () => {
  it('counts tests as they ended', () => {
    const c = countResults([file([test('passed'), test('passed'), test('failed'), suite([test('skipped'), test('passed')])])]);
    expect(c).toEqual({ passed: 3, failed: 1, skipped: 1, errors: 0 });
  });

  it('counts a file whose beforeAll threw as one failure, not its tests as skipped', () => {
    const broken = file([test('skipped'), test('skipped'), suite([test('skipped')])], [new Error('beforeAll')]);
    const unimportable = file([], [new Error('Cannot find module')]);
    const c = countResults([broken, unimportable, file([test('passed')])]);
    expect(c).toEqual({ passed: 1, failed: 2, skipped: 0, errors: 0 });
    // What the old reporter printed for the same two files: "1 failed, 3 skipped".
    expect(summaryLine(c)).toBe('tests: 1 passed, 2 failed');
  });

  it('counts a describe whose beforeAll threw as one failure, and the rest of the file as usual', () => {
    const c = countResults([file([test('passed'), suite([test('skipped'), test('skipped')], [new Error('beforeAll')]), test('skipped')])]);
    expect(c).toEqual({ passed: 1, failed: 1, skipped: 1, errors: 0 });
  });

  it('counts an afterAll that threw after its tests passed as one failure beside them', () => {
    expect(countResults([file([test('passed'), test('passed')], [new Error('afterAll')])])).toEqual({ passed: 2, failed: 1, skipped: 0, errors: 0 });
  });

  it('never counts a file vitest marks failed as nothing', () => {
    const odd: CountedSuite = { type: 'module', state: () => 'failed', errors: () => [], children: [test('skipped')] };
    expect(countResults([odd])).toEqual({ passed: 0, failed: 1, skipped: 1, errors: 0 });
  });

  it('adds errors outside every file to the line', () => {
    expect(summaryLine(countResults([file([test('passed')])], 2))).toBe('tests: 1 passed, 0 failed, 2 errors');
  });
});

/** vitest itself, in a child process, on files that fail in each way, with the real reporter. */
describe('the summary reporter in a real vitest run', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const vitestBin = path.resolve(here, '../../node_modules/vitest/vitest.mjs');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'safeshift-reporter-'));
    await writeFile(path.join(dir, 'owner.pid'), `${process.pid}\n`);
    // Globals, so the fixtures need not resolve "vitest" from the temp directory; one worker thread, the cheapest.
    const config = {
      globals: true,
      include: ['*.test.mjs'],
      pool: 'threads',
      poolOptions: { threads: { singleThread: true } },
      reporters: [path.join(here, 'summary-reporter.ts')],
    };
    await writeFile(path.join(dir, 'vitest.config.mjs'), `export default { test: ${JSON.stringify(config)} };\n`);
    await writeFile(path.join(dir, 'a-passes.test.mjs'), `it('one', () => {}); it('two', () => {}); it.skip('skipped on purpose', () => {});\n`);
    await writeFile(
      path.join(dir, 'b-before-all.test.mjs'),
      `beforeAll(() => { throw new Error('no database'); });\nit('x', () => {}); it('y', () => {}); it('z', () => {});\n`,
    );
    await writeFile(path.join(dir, 'c-import.test.mjs'), `throw new Error('broken at import');\n`);
    await writeFile(path.join(dir, 'd-fails.test.mjs'), `it('fails', () => { throw new Error('boom'); }); it('passes', () => {});\n`);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints one failure per failed file and per failed test, and no skip for tests a beforeAll kept from running', async () => {
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [vitestBin, 'run', '--root', dir, '--config', path.join(dir, 'vitest.config.mjs')],
        { env: { ...process.env, CI: '1' } },
        (error, out) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out });
        },
      );
    });
    expect(code, stdout).toBe(1);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1), stdout).toBe('tests: 3 passed, 3 failed, 1 skipped');
  }, 60_000);
});
