-- The email bridge: outgoing mail (outbox), reply addresses, processed inbound mail,
-- and addresses we must not write to again.

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('owner_notify', 'visitor_notify', 'resume_link')),
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    recipient   TEXT NOT NULL,
    not_before  TEXT NOT NULL,               -- ISO UTC; due when now >= not_before
    status      TEXT NOT NULL DEFAULT 'pending'  -- sending: claimed by the worker
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    payload     TEXT,                        -- JSON; resume_link: {"page": ...}
    upto_seq    INTEGER,                     -- messages up to this seq went in the email;
                                             -- the next email to this recipient starts after
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- One pending email per (kind, thread, recipient): later messages join it (batching).
-- Once claimed (sending), it is out of the index, and a new message starts a new one.
CREATE UNIQUE INDEX outbox_one_pending ON outbox(kind, thread_id, recipient)
    WHERE status = 'pending';
CREATE INDEX outbox_due ON outbox(status, not_before);
CREATE INDEX outbox_last_sent ON outbox(kind, thread_id, recipient, status, upto_seq);

CREATE TABLE reply_tags (
    tag         TEXT PRIMARY KEY,            -- lowercase base32 HMAC(thread, recipient)
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    recipient   TEXT NOT NULL,               -- lowercased address the tag was issued to
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE UNIQUE INDEX reply_tags_thread_recipient ON reply_tags(thread_id, recipient);

CREATE TABLE inbound (
    message_id  TEXT PRIMARY KEY,            -- duplicate deliveries are ignored
    verdict     TEXT NOT NULL,
    thread_id   TEXT,
    received_at TEXT NOT NULL
);

CREATE TABLE suppressed (
    address     TEXT PRIMARY KEY,            -- lowercased
    reason      TEXT NOT NULL,               -- hard_bounce | unsubscribed
    created_at  TEXT NOT NULL
);

ALTER TABLE visitors ADD COLUMN unconfirmed_emails_sent INTEGER NOT NULL DEFAULT 0;
-- "Sign out everywhere" moves it; visitor tokens carry the epoch they were issued in.
ALTER TABLE visitors ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE resume_uses (                   -- a resume link works once
    jti      TEXT PRIMARY KEY,
    used_at  TEXT NOT NULL
);
