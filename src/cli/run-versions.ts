import type { RunRecord } from '../ports.ts';
import { shownStatus } from '../steps/run-liveness.ts';
import { table } from './format.ts';

/**
 * A run's versions as a person reads them: where it started, where it meant to go, and, when it did
 * not get there, how it ended and where the database is.
 *
 * @example
 * ```ts
 * runVersions({ fromVersion: '3', plannedVersion: '5', toVersion: '3', status: 'rolled-back', … }) // '3 → 5: rolled back, at 3'
 * ```
 */
export function runVersions(run: Pick<RunRecord, 'fromVersion' | 'plannedVersion' | 'toVersion' | 'status'>): string {
  const v = (x: string | null | undefined) => x ?? 'none';
  const planned = run.plannedVersion === undefined ? run.toVersion : run.plannedVersion;
  const path = `${v(run.fromVersion)} → ${v(planned)}`;
  if (run.status === 'succeeded' || run.status === 'running') return path;
  return `${path}: ${run.status.replace('-', ' ')}, at ${run.status === 'needs-operator' && run.toVersion === undefined ? 'unknown' : v(run.toVersion)}`;
}

/**
 * The `runs` table, local and on AWS alike: when each started, its kind, its status (an interrupted
 * local run shows as such), its versions as {@link runVersions} says them, its error and its id.
 */
export function runsTable(runs: readonly RunRecord[]): string {
  return table(
    ['started', 'kind', 'status', 'versions', 'error', 'run id'],
    runs.map((r) => [r.startedAt.replace('T', ' ').slice(0, 19), r.kind, shownStatus(r), runVersions(r), r.error?.code, r.runId]),
  );
}
