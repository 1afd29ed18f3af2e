-- Every order belongs to a customer (false fails the check).
select not exists (select 1 from orders o left join customers c on c.id = o.customer_id where c.id is null);
