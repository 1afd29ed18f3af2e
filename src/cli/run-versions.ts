import type { RunRecord } from '../ports.ts';

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
