-- PostgreSQL: the trigger of ../0005_message_bookkeeping.sql.
CREATE FUNCTION message_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET last_seq = NEW.seq, updated_at = NEW.created_at,
        visitor_read_seq = CASE WHEN NEW.author = 'visitor' THEN NEW.seq
                                ELSE visitor_read_seq END,
        owner_read_seq = CASE WHEN NEW.author = 'owner' THEN NEW.seq ELSE owner_read_seq END
    WHERE id = NEW.thread_id;
    IF NEW.author = 'visitor' THEN
        UPDATE visitors SET last_seen_at = NEW.created_at
        WHERE id = (SELECT visitor_id FROM threads WHERE id = NEW.thread_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_bookkeeping AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION message_bookkeeping();
