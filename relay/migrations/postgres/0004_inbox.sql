-- PostgreSQL: the schema of ../0004_inbox.sql. Search is PostgreSQL's own full-text
-- search over an expression index: accents folded by the unaccent extension (shipped
-- with PostgreSQL), every word a prefix, as with SQLite's FTS5.

CREATE TABLE owners (
    email       TEXT PRIMARY KEY,
    name        TEXT,
    language    TEXT,
    notify      TEXT NOT NULL DEFAULT 'message'
                CHECK (notify IN ('message', 'hourly', 'daily', 'off')),
    aliases     TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL
);

CREATE TABLE owner_sessions (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    user_agent    TEXT,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX owner_sessions_email ON owner_sessions(email);

CREATE TABLE login_uses (
    jti      TEXT PRIMARY KEY,
    used_at  TEXT NOT NULL
);

ALTER TABLE visitors ADD COLUMN language TEXT;

CREATE EXTENSION IF NOT EXISTS unaccent;
-- fold(): lower case without accents, as SQLite's fold() and FTS5's remove_diacritics.
-- unaccent() is only STABLE (its dictionary could change); naming the dictionary makes
-- the result fixed, which an index needs, and qualifying both with the extension's
-- schema makes it work whatever the search_path (pg_restore runs with an empty one).
DO $do$
DECLARE
    ext text := (SELECT n.nspname FROM pg_extension e
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent');
BEGIN
    EXECUTE format(
        'CREATE FUNCTION fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE'
        ' AS %L', format('SELECT lower(%I.unaccent(%L::regdictionary, $1))',
                         ext, ext || '.unaccent'));
END $do$;
-- An index over the expression, not a stored column: SELECT * stays as in SQLite.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', fold(body)));

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('owner_notify', 'owner_digest', 'visitor_notify', 'resume_link',
                    'owner_login'));
ALTER TABLE outbox ALTER COLUMN thread_id DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_thread_or_owner
    CHECK ((thread_id IS NULL) = (kind IN ('owner_digest', 'owner_login')));
CREATE UNIQUE INDEX outbox_one_pending_digest ON outbox(kind, recipient)
    WHERE status = 'pending' AND kind = 'owner_digest';
