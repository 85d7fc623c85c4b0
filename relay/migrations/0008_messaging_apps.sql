-- Messaging apps as channels (relay/channels/apps): a site's account on Telegram,
-- WhatsApp or Messenger; the chats of its customers there, each bound to the
-- customer's one thread; and the single-use codes that bind a widget thread to a chat.
CREATE TABLE app_channels (
    id          TEXT PRIMARY KEY,          -- in its webhook URL: /v1/channels/{id}/webhook
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,             -- telegram | whatsapp | messenger
    account     TEXT NOT NULL,             -- bot id, phone-number id, page id
    handle      TEXT NOT NULL DEFAULT '',  -- public: bot username, phone number, page
    secrets     TEXT NOT NULL,             -- JSON: tokens, app secret, verify token
    template    TEXT,                      -- an approved template, for outside the window
    created_at  TEXT NOT NULL,
    UNIQUE (kind, account)                 -- one account answers for one site
);
CREATE INDEX app_channels_site ON app_channels(site_id);

CREATE TABLE chats (
    channel_id      TEXT NOT NULL REFERENCES app_channels(id) ON DELETE CASCADE,
    address         TEXT NOT NULL,         -- chat id, wa_id, page-scoped id
    visitor_id      TEXT NOT NULL REFERENCES visitors(id) ON DELETE CASCADE,
    thread_id       TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    name            TEXT,
    from_seq        INTEGER NOT NULL DEFAULT 0,  -- replies after this seq go to the chat
    last_inbound_at TEXT NOT NULL,         -- the customer's last message: 24-hour window
    created_at      TEXT NOT NULL,
    PRIMARY KEY (channel_id, address)
);
CREATE INDEX chats_thread ON chats(thread_id);

CREATE TABLE link_codes (
    code_hash   TEXT PRIMARY KEY,          -- sha256 of the code: a copied database binds nothing
    channel_id  TEXT NOT NULL REFERENCES app_channels(id) ON DELETE CASCADE,
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX link_codes_thread ON link_codes(thread_id);

-- The outbox, rebuilt (SQLite cannot change a CHECK): a delivery may be an app's
-- approved template ('template'), and it keeps what the provider calls the message we
-- sent and what it last said of it (WhatsApp's statuses: sent, delivered, read, failed).
CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('owner_notify', 'owner_digest', 'visitor_notify', 'resume_link',
                                'owner_login', 'template')),
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
    channel     TEXT NOT NULL DEFAULT 'email',
    external_id TEXT,
    receipt     TEXT,
    CHECK ((thread_id IS NULL) = (kind IN ('owner_digest', 'owner_login')))
);
INSERT INTO outbox_new (id, kind, thread_id, recipient, not_before, status, attempts,
                        last_error, payload, upto_seq, created_at, updated_at, channel)
    SELECT id, kind, thread_id, recipient, not_before, status, attempts, last_error, payload,
           upto_seq, created_at, updated_at, channel FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
-- One pending delivery per channel, kind, thread and recipient.
CREATE UNIQUE INDEX outbox_one_pending ON outbox(channel, kind, thread_id, recipient)
    WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_one_pending_digest ON outbox(kind, recipient)
    WHERE status = 'pending' AND kind = 'owner_digest';
CREATE INDEX outbox_due ON outbox(status, not_before);
CREATE INDEX outbox_last_sent ON outbox(kind, thread_id, recipient, status, upto_seq);
CREATE INDEX outbox_external_id ON outbox(external_id) WHERE external_id IS NOT NULL;
