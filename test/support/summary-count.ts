/**
 * What the closing summary line counts (test/support/summary-reporter.ts), from vitest's reporter
 * tree. Only the parts of vitest's TestModule / TestSuite / TestCase it reads, so it can be checked
 * without running vitest.
 */
export interface CountedCase {
  readonly type: 'test';
  result(): { readonly state: string };
}

/** A TestModule (a file) or a TestSuite (a `describe`). */
export interface CountedSuite {
  readonly type: 'module' | 'suite';
  state(): string;
  /** Errors of its own, outside any test: the file failed to import, a beforeAll or afterAll threw. */
  errors(): readonly unknown[];
  /** Its direct children (vitest's TestCollection iterates them). */
  readonly children: Iterable<CountedCase | CountedSuite>;
}

export interface SummaryCounts {
  passed: number;
  failed: number;
  skipped: number;
  /** Errors vitest saw outside every file (an unhandled rejection, a worker that died). */
  errors: number;
}

/**
 * Counts tests that passed, failed and were skipped, so that the closing line says the same as
 * vitest: a file that fails by itself (its import throws, its beforeAll or afterAll throws) is one
 * failure, and the tests its failed beforeAll kept from running are not reported as skipped, since
 * nobody skipped them.
 *
 * - a test: counted as it ended (a skipped or todo one as skipped), unless it is under a file or
 *   suite that failed by itself: then, not having run, it is not counted at all;
 * - a file or suite with errors of its own: one failure;
 * - a file vitest marks failed with nothing in it counted as failed: one failure (never 0 for a
 *   failed file).
 *
 * @example
 * ```ts
 * const c = countResults(testModules, unhandledErrors.length);
 * // a file whose beforeAll threw, with 3 tests, and a file that does not import: { passed: 0, failed: 2, skipped: 0, errors: 0 }
 * ```
 */
export function countResults(modules: Iterable<CountedSuite>, unhandledErrors = 0): SummaryCounts {
  const counts: SummaryCounts = { passed: 0, failed: 0, skipped: 0, errors: unhandledErrors };
  for (const m of modules) {
    const failedBefore = counts.failed;
    countSuite(m, false, counts);
    if (m.state() === 'failed' && counts.failed === failedBefore) counts.failed++;
  }
  return counts;
}

function countSuite(suite: CountedSuite, underBroken: boolean, counts: SummaryCounts): void {
  const broken = suite.errors().length > 0;
  if (broken) counts.failed++;
  for (const child of suite.children) {
    if (child.type !== 'test') {
      countSuite(child, underBroken || broken, counts);
      continue;
    }
    const { state } = child.result();
    if (state === 'passed') counts.passed++;
    else if (state === 'failed') counts.failed++;
    else if (!(underBroken || broken)) counts.skipped++;
  }
}

/** The closing line: `tests: N passed, N failed`, then `, N skipped` and `, N errors` when there are any. */
export function summaryLine(c: SummaryCounts): string {
  return `tests: ${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}${c.errors ? `, ${c.errors} errors` : ''}`;
}
