import { describe, expect, it } from 'vitest';
import { runDemo } from '../examples/demo/run-demo.ts';
import { silentLogger } from '../src/core/logger.ts';
import { testServerUrl } from './support/database.ts';

describe('the demo (npm start)', () => {
  it('upgrades a busy shop twice: one upgrade succeeds, one is rolled back, and every acknowledged write is present', async () => {
    const states: string[] = [];
    const report = await runDemo(silentLogger, (run, state) => states.push(`${run}:${state}`), { serverUrl: testServerUrl() });
    expect(report.rows).toBeGreaterThanOrEqual(100_000);
    expect(report.upgrades.map((u) => u.run.status)).toEqual(['succeeded', 'rolled-back']);
    expect(report.upgrades[0]?.run.toVersion).toBe('3');
    expect(report.upgrades[1]?.run.error?.code).toBe('MIGRATION_FAILED');
    expect(report.writes.acknowledged).toBeGreaterThan(0);
    expect(report.writes.present).toBe(report.writes.acknowledged);
    expect(report.writes.errors).toBe(0);
    expect(report.upgrades.every((u) => u.quiesced.length === 2 && u.quiesced.every((q) => q.status === 'resumed'))).toBe(true);
    expect(report.asExpected).toBe(true);
    expect(states).toContain('upgrade 2:SwapRestoredIn');
    expect(report.upgrades[1]?.run.applied ?? []).toEqual([]);
  }, 120_000);
});
