import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SqlClient } from '../ports.ts';
import { normaliseText } from './checksum.ts';
import { SafeshiftError } from './errors.ts';

/** The outcome of one verify check. */
export interface VerifyResult {
  readonly check: string;
  readonly ok: boolean;
  readonly message?: string;
}

/**
 * Runs the `verify/*.sql` checks against a database inside a read-only transaction that is rolled
 * back: a check fails when it errors or when its first row's first column is `false`. Throws
 * VERIFY_FAILED listing every failed check.
 *
 * @example
 * ```ts
 * await verifyDatabase(client, 'examples/verify', 'the clone');
 * ```
 */
export async function verifyDatabase(client: SqlClient, dir: string | undefined, where: string): Promise<VerifyResult[]> {
  if (!dir) return [];
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.sql')).sort();
  const results: VerifyResult[] = [];
  for (const name of names) {
    const sql = normaliseText(await readFile(path.join(dir, name), 'utf8'));
    await client.query('begin read only');
    try {
      const { rows } = await client.query<Record<string, unknown>>(sql);
      const first = rows[0] ? Object.values(rows[0])[0] : undefined;
      results.push(first === false ? { check: name, ok: false, message: 'returned false' } : { check: name, ok: true });
    } catch (error) {
      results.push({ check: name, ok: false, message: (error as Error).message });
    } finally {
      await client.query('rollback').catch(() => undefined);
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new SafeshiftError('VERIFY_FAILED', `verify failed on ${where}: ${failed.map((f) => `${f.check} ${f.message}`).join('; ')}`, { details: { results } });
  }
  return results;
}
