create table orders (
  id bigint generated always as identity primary key,
  customer_id bigint not null references customers (id),
  amount_cents integer not null check (amount_cents >= 0),
  created_at timestamptz not null default now()
);
create index orders_customer_id_idx on orders (customer_id);
