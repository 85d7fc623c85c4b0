-- Photos and files (relay/attachments): one row per upload, its bytes in a
-- content-addressed blob (digest) kept outside the database (the data dir's blobs/).
-- An upload belongs to its thread from the start; message_seq is set when a message
-- carries it.
CREATE TABLE attachments (
    id          TEXT PRIMARY KEY,          -- in download links, signed
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    uploader    TEXT NOT NULL CHECK (uploader IN ('visitor', 'owner')),
    message_seq INTEGER,                   -- NULL until sent with a message
    digest      TEXT NOT NULL,             -- SHA-256 of the stored bytes
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,             -- judged from the content
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX attachments_thread ON attachments(thread_id, message_seq);
CREATE INDEX attachments_digest ON attachments(digest);
