-- The demo's failing upgrade: about 1% of the seeded orders are free (amount_cents = 0), so this
-- constraint fails on the real data and the run restores the pre-upgrade snapshot.
-- safeshift:allow check-without-not-valid the demo wants the full check to run and fail
alter table orders add constraint orders_amount_positive check (amount_cents > 0);
