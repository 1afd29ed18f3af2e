-- safeshift:no-transaction
-- safeshift:lock-timeout 2s
-- Built without blocking writes; CONCURRENTLY cannot run inside a transaction.
create index concurrently if not exists orders_status_idx on orders (status);
