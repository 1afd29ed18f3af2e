import type pg from 'pg';
import { migrate } from '../../src/core/migrate.ts';
import type { Contender } from './contender.ts';

/** safeshift as a library user calls it: `migrate({ client, dir })` with its defaults (lock, preflight with lint, history). */
export function safeshiftContender(): Contender {
  return {
    name: 'safeshift',
    layout: 'safeshift',
    how: 'migrate({ client, dir }) with defaults: advisory lock, preflight (parse, checksums, lint), one transaction per migration with its history row',
    async apply(client: pg.Client, dir: string) {
      const result = await migrate({ client, dir });
      if (result.applied.length === 0) throw new Error('safeshift applied nothing');
    },
  };
}
