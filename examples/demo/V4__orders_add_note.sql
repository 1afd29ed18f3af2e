-- The demo's second upgrade applies this one fine; the next migration then fails, so production has
-- really changed and the run must restore the pre-upgrade snapshot.
alter table orders add column note text;
