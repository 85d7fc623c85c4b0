-- Sites, visitors, threads and messages. Times are ISO-8601 UTC text.

CREATE TABLE sites (
    id            TEXT PRIMARY KEY,          -- public slug used in the snippet
    name          TEXT NOT NULL,
    owner_emails  TEXT NOT NULL,             -- JSON array
    origins       TEXT NOT NULL,             -- JSON array of "scheme://host[:port]"
    settings      TEXT NOT NULL DEFAULT '{}',-- JSON: greeting, language, color, ...
    created_at    TEXT NOT NULL
);

CREATE TABLE site_origins (                  -- origins indexed for CORS preflights
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
    start_client_id   TEXT,                  -- makes a retried start idempotent
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_seq          INTEGER NOT NULL DEFAULT 0,
    owner_read_seq    INTEGER NOT NULL DEFAULT 0,
    visitor_read_seq  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX threads_one_open_per_visitor ON threads(visitor_id) WHERE status = 'open';
CREATE UNIQUE INDEX threads_start_client_id ON threads(site_id, start_client_id);
CREATE INDEX threads_site_activity ON threads(site_id, updated_at);

CREATE TABLE messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the resume cursor
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
