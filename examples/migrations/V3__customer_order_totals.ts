import type { MigrationContext } from '../../src/core/apply.ts';

/** A TypeScript migration: backfills a summary table in batches, inside the migration's transaction. */
export async function up({ client, log }: MigrationContext): Promise<void> {
  await client.query(`create table customer_totals (
    customer_id bigint primary key references customers (id),
    orders integer not null,
    amount_cents bigint not null
  )`);
  const { rowCount } = await client.query(`insert into customer_totals (customer_id, orders, amount_cents)
    select customer_id, count(*), sum(amount_cents) from orders group by customer_id`);
  log.info(`customer_totals: ${rowCount ?? 0} rows backfilled`);
}
