-- PostgreSQL: the schema of ../0001_initial.sql, and the SQLite functions the store's
-- statements call (relay/store/pg_connection.py). Times are ISO-8601 UTC text, JSON is
-- text, as in SQLite: one set of statements serves both engines.

CREATE FUNCTION json_each(doc text) RETURNS TABLE (value text)
    LANGUAGE sql IMMUTABLE AS $$ SELECT json_array_elements_text(doc::json) $$;

CREATE FUNCTION strftime(format text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
-- strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days'): the store's only other use.
CREATE FUNCTION strftime(format text, base text, modifier text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT to_char((clock_timestamp() AT TIME ZONE 'UTC') + modifier::interval,
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- SQLite's scalar max()/min(): NULL if any argument is NULL (GREATEST skips NULLs).
CREATE FUNCTION max(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE GREATEST(a, b) END
$$;
CREATE FUNCTION max(a bigint, b bigint, c bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL OR c IS NULL THEN NULL ELSE GREATEST(a, b, c) END
$$;
CREATE FUNCTION min(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE LEAST(a, b) END
$$;
-- JSON kept as text: SQLite's `doc ->> 'key'` and json_object('key', number).
CREATE FUNCTION json_field(doc text, key text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT doc::json ->> key
$$;
CREATE OPERATOR ->> (LEFTARG = text, RIGHTARG = text, FUNCTION = json_field);
CREATE FUNCTION json_object(key text, value bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object(key, value)::text
$$;
CREATE FUNCTION min(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE LEAST(a, b) END
$$;

CREATE TABLE sites (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    owner_emails  TEXT NOT NULL,
    origins       TEXT NOT NULL,
    settings      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);

CREATE TABLE site_origins (
    origin   TEXT NOT NULL,
    site_id  TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    PRIMARY KEY (origin, site_id)
);

CREATE TABLE visitors (
    id                 TEXT PRIMARY KEY,
    site_id            TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name               TEXT,
    email              TEXT,
    email_verified_at  TEXT,
    external_id        TEXT,
    created_at         TEXT NOT NULL,
    last_seen_at       TEXT NOT NULL
);
CREATE INDEX visitors_site ON visitors(site_id);

CREATE TABLE threads (
    id                TEXT PRIMARY KEY,
    site_id           TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    visitor_id        TEXT NOT NULL REFERENCES visitors(id) ON DELETE CASCADE,
    status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    page              TEXT,
    start_client_id   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_seq          BIGINT NOT NULL DEFAULT 0,
    owner_read_seq    BIGINT NOT NULL DEFAULT 0,
    visitor_read_seq  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX threads_one_open_per_visitor ON threads(visitor_id) WHERE status = 'open';
CREATE UNIQUE INDEX threads_start_client_id ON threads(site_id, start_client_id);
CREATE INDEX threads_site_activity ON threads(site_id, updated_at);

-- seq is the resume cursor: a client that saw seq N asks for what comes after N. So
-- seqs must become visible in order, which a sequence does not promise (a later
-- transaction may commit first). One counter row, locked until commit, hands them out
-- in commit order across every relay process.
CREATE TABLE message_seq (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);
INSERT INTO message_seq VALUES (1, 0);

CREATE TABLE messages (
    seq         BIGINT PRIMARY KEY,
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    author      TEXT NOT NULL CHECK (author IN ('visitor', 'owner', 'system')),
    body        TEXT NOT NULL,
    via         TEXT NOT NULL,
    client_id   TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (thread_id, client_id)
);
CREATE INDEX messages_thread_seq ON messages(thread_id, seq);
CREATE INDEX messages_site_seq ON messages(site_id, seq);

CREATE FUNCTION next_message_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NULL THEN  -- porch copy-db brings its own
        UPDATE message_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO NEW.seq;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_seq BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION next_message_seq();
