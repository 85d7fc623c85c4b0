-- What a new message changes elsewhere is done by the database within the INSERT: the
-- thread's last seq and activity, the author's read cursor (one has read what one
-- wrote), the visitor's last visit. One statement on the hot path instead of three,
-- each a round trip on PostgreSQL.
CREATE TRIGGER messages_bookkeeping AFTER INSERT ON messages BEGIN
    UPDATE threads SET last_seq = new.seq, updated_at = new.created_at,
        visitor_read_seq = CASE WHEN new.author = 'visitor' THEN new.seq
                                ELSE visitor_read_seq END,
        owner_read_seq = CASE WHEN new.author = 'owner' THEN new.seq ELSE owner_read_seq END
    WHERE id = new.thread_id;
    UPDATE visitors SET last_seen_at = new.created_at
    WHERE new.author = 'visitor'
      AND id = (SELECT visitor_id FROM threads WHERE id = new.thread_id);
END;
