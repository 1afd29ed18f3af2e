import { SafeshiftError } from '../core/errors.ts';
import { requireVersion } from '../core/version.ts';
import type { RunKind } from '../ports.ts';
import type { RunInput } from './state.ts';

const KINDS: readonly RunKind[] = ['upgrade', 'restore', 'rehearsal'];
const STRATEGIES = ['in-place', 'swap'] as const;

/**
 * Checks a run's input and fills in its defaults, in one place for every caller: the CLI, the
 * console, a pipeline that starts the state machine with its own JSON. The first state of every
 * workflow calls it, so an input that would fail later (a missing strategy read by a Choice after
 * Quiesce) is refused before the lock, with every problem listed and nothing changed.
 *
 * @example
 * ```ts
 * normalizeRunInput({ runId: 'r1', kind: 'upgrade', database: 'shop' })
 * // { runId: 'r1', kind: 'upgrade', database: 'shop', strategy: 'in-place', rehearsal: true, quiesce: [], noQuiesce: false, targetVersion: null }
 * ```
 */
export function normalizeRunInput(raw: unknown): RunInput {
  const problems: string[] = [];
  const run = (raw !== null && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  if (raw === null || typeof raw !== 'object') problems.push('the input must have a "run" object');
  const text = (key: string, required: boolean): string | undefined => {
    const value = run[key];
    if (value === undefined || value === null) {
      if (required) problems.push(`run.${key} is required`);
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`run.${key} must be a non-empty string, not ${JSON.stringify(value)}`);
      return undefined;
    }
    return value;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const value = run[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') problems.push(`run.${key} must be true or false, not ${JSON.stringify(value)}`);
    return value === true;
  };
  const runId = text('runId', true);
  const database = text('database', true);
  const kindText = text('kind', true);
  const kind = KINDS.find((k) => k === kindText);
  if (kindText !== undefined && !kind) problems.push(`run.kind is one of ${KINDS.join(', ')}, not "${kindText}"`);
  const strategyText = run.strategy === undefined ? 'in-place' : text('strategy', false);
  const strategy = STRATEGIES.find((s) => s === strategyText);
  if (strategyText !== undefined && !strategy) problems.push(`run.strategy is in-place or swap, not "${strategyText}"`);
  const targetVersion = text('targetVersion', false) ?? null;
  if (targetVersion !== null) {
    try {
      requireVersion(targetVersion, 'run.targetVersion');
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  const quiesce = run.quiesce === undefined ? [] : run.quiesce;
  if (!Array.isArray(quiesce) || !quiesce.every((q): q is string => typeof q === 'string' && q.length > 0)) {
    problems.push(`run.quiesce must be a list of quiesce specs such as "db-role:app", not ${JSON.stringify(run.quiesce)}`);
  }
  const snapshotId = text('snapshotId', kind === 'restore');
  const verifyTimeout = run.verifyTimeoutSeconds;
  if (verifyTimeout !== undefined && !(typeof verifyTimeout === 'number' && Number.isFinite(verifyTimeout) && verifyTimeout > 0)) {
    problems.push(`run.verifyTimeoutSeconds must be a positive number of seconds, not ${JSON.stringify(verifyTimeout)}`);
  }
  const rehearsal = flag('rehearsal', kind !== 'restore');
  const noQuiesce = flag('noQuiesce', false);
  if (problems.length > 0 || !runId || !database || !kind || !strategy) {
    throw new SafeshiftError('BAD_OPTION', `the run's input is not valid; nothing was started:\n  ${problems.join('\n  ')}`, { details: { problems } });
  }
  return {
    runId,
    kind,
    database,
    strategy,
    rehearsal,
    noQuiesce,
    targetVersion,
    quiesce: quiesce as string[],
    ...(snapshotId ? { snapshotId } : {}),
    ...(typeof verifyTimeout === 'number' ? { verifyTimeoutSeconds: verifyTimeout } : {}),
  };
}
