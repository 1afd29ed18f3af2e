import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Contender } from './contender.ts';

/**
 * The limit: one session sends `BEGIN; <file>; COMMIT` as a single simple query per migration
 * (one round trip, one commit each) and records nothing. No tool that keeps a history and checks
 * what it runs can beat it, so the other contenders are reported as a ratio of it.
 *
 * The files are read before the clock starts: the limit is the database's share of the work alone,
 * which makes it the strictest yardstick (every tool also pays for reading files).
 */
export function limitContender(): Contender {
  let texts: string[] = [];
  return {
    name: 'limit (raw pg)',
    layout: 'safeshift',
    how: 'one pg session, `BEGIN; <file>; COMMIT` as one simple query per migration, no bookkeeping; files read before timing',
    async prepare(dir) {
      const names = (await readdir(dir)).filter((n) => n.endsWith('.sql'));
      // Same order safeshift applies: by the numeric version in V<n>__.
      names.sort((a, b) => versionOf(a) - versionOf(b));
      texts = await Promise.all(names.map((n) => readFile(path.join(dir, n), 'utf8')));
    },
    async apply(client) {
      for (const sql of texts) await client.query(`BEGIN;\n${sql}\nCOMMIT;`);
    },
  };
}

function versionOf(name: string): number {
  return Number(/^V(\d+)__/.exec(name)?.[1] ?? Number.NaN);
}
