import type pg from 'pg';
import Postgrator from 'postgrator';
import type { Contender } from './contender.ts';

/**
 * postgrator v8 through its programmatic API on our pg client, with `NNNN.do.<name>.sql` files.
 * It sends each file as one simple query (which Postgres runs as one implicit transaction) and then
 * its history insert; that is how it runs, so it runs that way here.
 */
export function postgratorContender(): Contender {
  return {
    name: 'postgrator 8',
    layout: 'postgrator',
    how: 'new Postgrator({ driver: "pg", execQuery: client.query }).migrate(); file as one simple query, then its history insert',
    async apply(client: pg.Client, dir: string) {
      const postgrator = new Postgrator({
        driver: 'pg',
        migrationPattern: `${dir}/*.sql`,
        schemaTable: 'schemaversion',
        execQuery: (query: string) => client.query(query),
      });
      const ran = await postgrator.migrate();
      if (ran.length === 0) throw new Error('postgrator applied nothing');
    },
  };
}
