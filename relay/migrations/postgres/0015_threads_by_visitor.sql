-- PostgreSQL: the index of ../0015_threads_by_visitor.sql (there a partial index cannot
-- serve `visitor_id = $1` either: the lookup was a sequential scan of threads).
CREATE INDEX threads_visitor ON threads(visitor_id);
