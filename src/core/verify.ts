import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SqlClient } from '../ports.ts';
import { normaliseText } from './checksum.ts';
import { SafeshiftError, SqlStates, sqlState } from './errors.ts';

/** The outcome of one verify check. */
export interface VerifyResult {
  readonly check: string;
  readonly ok: boolean;
  readonly message?: string;
}

/** How long one verify check may run by default: the APIs are stopped while production is verified. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 30_000;

/**
 * Runs the `verify/*.sql` checks against a database inside a read-only transaction that is rolled
 * back: a check fails when it errors, when its first row's first column is `false`, or when it runs
 * past `timeoutMs` (statement_timeout). Throws VERIFY_FAILED listing every failed check.
 *
 * @example
 * ```ts
 * await verifyDatabase(client, 'examples/verify', 'the clone', 10_000);
 * ```
 */
export async function verifyDatabase(
  client: SqlClient,
  dir: string | undefined,
  where: string,
  timeoutMs = DEFAULT_VERIFY_TIMEOUT_MS,
): Promise<VerifyResult[]> {
  if (!dir) return [];
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.sql')).sort();
  const results: VerifyResult[] = [];
  for (const name of names) {
    const sql = normaliseText(await readFile(path.join(dir, name), 'utf8'));
    await client.query(`begin read only; set local statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    try {
      const { rows } = await client.query(sql);
      const first = rows[0] ? Object.values(rows[0])[0] : undefined;
      results.push(first === false ? { check: name, ok: false, message: 'returned false' } : { check: name, ok: true });
    } catch (error) {
      const message =
        sqlState(error) === SqlStates.queryCanceled
          ? `did not finish within ${formatSeconds(timeoutMs)} and was cancelled (raise the verify timeout if the check is meant to take longer)`
          : error instanceof Error
            ? error.message
            : String(error);
      results.push({ check: name, ok: false, message });
    } finally {
      await client.query('rollback').catch(() => undefined);
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new SafeshiftError('VERIFY_FAILED', `verify failed on ${where}: ${failed.map((f) => `${f.check} ${f.message}`).join('; ')}`, {
      details: { results },
    });
  }
  return results;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
