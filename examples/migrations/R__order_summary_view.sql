-- Repeatable: re-applied whenever this file changes.
create or replace view order_summary as
  select c.id as customer_id, c.email, count(o.id) as orders, coalesce(sum(o.amount_cents), 0) as amount_cents
    from customers c left join orders o on o.customer_id = c.id
   group by c.id, c.email;
