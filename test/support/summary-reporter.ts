import type { Reporter, SerializedError, TestModule } from 'vitest/node';
import { countResults, summaryLine } from './summary-count.ts';

/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own summary,
 * so CI and people reading a log see the counts in a form any tool can read. A file that fails by
 * itself (import, beforeAll, afterAll) counts as one failure; see test/support/summary-count.ts.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: readonly TestModule[], unhandledErrors: readonly SerializedError[] = []): void {
    const line = summaryLine(countResults(modules, unhandledErrors.length));
    // After the default reporter has printed its summary, so this stays the closing line.
    setTimeout(() => process.stdout.write(`\n${line}\n`), 0);
  }
}
