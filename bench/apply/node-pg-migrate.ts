import type pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Contender } from './contender.ts';

/** Its logger's messages would go to the console; the other contenders print nothing either. */
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * node-pg-migrate v9 through its programmatic `runner` with plain `.sql` files (its SQL loader wraps
 * the text in `pgm.sql`). `singleTransaction: false` gives one transaction per migration, as the others.
 */
export function nodePgMigrateContender(): Contender {
  return {
    name: 'node-pg-migrate 9',
    layout: 'node-pg-migrate',
    how: 'runner({ dbClient, dir, direction: "up", singleTransaction: false }) with .sql files; it sends BEGIN, the file, its history insert, COMMIT',
    async apply(client: pg.Client, dir: string) {
      const ran = await runner({
        dbClient: client,
        dir,
        direction: 'up',
        migrationsTable: 'pgmigrations',
        singleTransaction: false,
        logger: quiet,
      });
      if (ran.length === 0) throw new Error('node-pg-migrate applied nothing');
    },
  };
}
