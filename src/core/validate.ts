import type { SqlClient } from '../ports.ts';
import type { Problem } from './errors.ts';
import { DEFAULT_HISTORY, type HistoryLocation } from './history.ts';
import { preflight } from './preflight.ts';

export interface ValidateOptions {
  readonly client: SqlClient;
  readonly dir: string;
  readonly history?: HistoryLocation;
  /** Accept pending versions below the highest applied one. @default false */
  readonly outOfOrder?: boolean;
}

export interface ValidateReport {
  readonly ok: boolean;
  /** Every problem found, not just the first. */
  readonly problems: readonly Problem[];
  readonly applied: number;
  readonly pending: number;
}

/**
 * Checks the folder against the history without changing anything: checksum drift, applied files
 * missing from disk, pending versions below the applied maximum, duplicate versions, bad names,
 * bad directives, failed runs awaiting repair and syntax errors in pending files.
 *
 * @example
 * ```ts
 * const report = await validate({ client, dir: 'migrations' });
 * for (const p of report.problems) console.error(p.code, p.message);
 * ```
 */
export async function validate(options: ValidateOptions): Promise<ValidateReport> {
  const pf = await preflight({
    client: options.client,
    dir: options.dir,
    history: options.history ?? DEFAULT_HISTORY,
    lint: false,
    ...(options.outOfOrder ? { outOfOrder: true } : {}),
  });
  return { ok: pf.problems.length === 0, problems: pf.problems, applied: pf.plan.applied.length, pending: pf.plan.pending.length };
}
