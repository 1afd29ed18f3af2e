-- Expand: a nullable column with a constant default; old code that does not know it keeps working.
alter table orders add column status text default 'placed';
