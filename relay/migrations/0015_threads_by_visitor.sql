-- A visitor's threads, whatever their status: the thread behind a visitor token is looked
-- up on every request and socket of the widget (store.visitor_thread) and when a signed-in
-- user starts again. threads_one_open_per_visitor only holds open threads, so without this
-- each lookup scanned every thread (~2.7 ms with 50,000 threads; tests/bench/store_size.py).
-- A visitor's erasure (ON DELETE CASCADE) finds their threads by it too.
CREATE INDEX threads_visitor ON threads(visitor_id);
