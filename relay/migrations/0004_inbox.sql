-- The owner's side: people who answer (owners), their inbox sessions, single-use sign-in
-- links, search over messages, visitors' language, and digests in the outbox.

CREATE TABLE owners (                        -- one row per answering address, made on demand;
    email       TEXT PRIMARY KEY,            -- lowercased. Which sites: sites.owner_emails
    name        TEXT,
    language    TEXT,                        -- NULL: not chosen (the page follows the browser)
    notify      TEXT NOT NULL DEFAULT 'message'
                CHECK (notify IN ('message', 'hourly', 'daily', 'off')),
    aliases     TEXT NOT NULL DEFAULT '[]',  -- JSON: other addresses they may reply from
    created_at  TEXT NOT NULL
);

CREATE TABLE owner_sessions (                -- the inbox cookie carries the id, signed
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    user_agent    TEXT,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX owner_sessions_email ON owner_sessions(email);

CREATE TABLE login_uses (                    -- a sign-in link works once
    jti      TEXT PRIMARY KEY,
    used_at  TEXT NOT NULL
);

ALTER TABLE visitors ADD COLUMN language TEXT;  -- the widget's, for automatic replies

-- Full-text search for the inbox: accents folded ("creme" finds "crème"), prefixes.
-- Indexed in batches right after the messages commit (search_indexed: up to which
-- seq), not by a trigger per insert: a batch costs a fifth as much per message, and
-- the write that acknowledges a message stays short.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, content = 'messages', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE search_indexed (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
);
INSERT INTO search_indexed (id, seq) VALUES (1, 0);
-- Only an indexed message may be deleted from the index (external content: deleting
-- what was never added would corrupt it).
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.seq <= (SELECT seq FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;

-- The outbox gains digests: one email per owner for many threads (thread_id NULL).
CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('owner_notify', 'owner_digest', 'visitor_notify', 'resume_link',
                                'owner_login')),
    thread_id   TEXT REFERENCES threads(id) ON DELETE CASCADE,  -- NULL: digest, login
    recipient   TEXT NOT NULL,
    not_before  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    payload     TEXT,
    upto_seq    INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CHECK ((thread_id IS NULL) = (kind IN ('owner_digest', 'owner_login')))
);
INSERT INTO outbox_new SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE UNIQUE INDEX outbox_one_pending ON outbox(kind, thread_id, recipient)
    WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_one_pending_digest ON outbox(kind, recipient)
    WHERE status = 'pending' AND kind = 'owner_digest';
CREATE INDEX outbox_due ON outbox(status, not_before);
CREATE INDEX outbox_last_sent ON outbox(kind, thread_id, recipient, status, upto_seq);
