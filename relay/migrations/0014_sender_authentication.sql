-- Trust in email replies (relay/channels/email/authentication): who really sent a mail,
-- replies held until the owner decides, and notices to the senders of refused replies.

-- What the receiving SMTP server saw (the SMTP ingress only: peer, HELO, MAIL FROM), and
-- the sender authentication verdict, kept with the record of each inbound mail.
ALTER TABLE inbound ADD COLUMN peer_ip TEXT;
ALTER TABLE inbound ADD COLUMN helo TEXT;
ALTER TABLE inbound ADD COLUMN mail_from TEXT;
ALTER TABLE inbound ADD COLUMN authentication TEXT;   -- JSON: Authentication.to_json()

-- A reply whose sender could not be verified (its From domain publishes DMARC reject or
-- quarantine and nothing aligned passed): kept whole, shown to the owner, posted only when
-- released. Discarding forgets the mail itself and keeps the record.
CREATE TABLE held_mail (
    id              INTEGER PRIMARY KEY,
    thread_id       TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL UNIQUE,        -- its Message-ID, the inbound record's key
    author          TEXT NOT NULL CHECK (author IN ('owner', 'visitor')),
    sender          TEXT NOT NULL,               -- From, lowercased
    recipient       TEXT NOT NULL,               -- whom the reply tag was issued to
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,               -- the new text, as it would be posted
    reason          TEXT NOT NULL,               -- Decision.reason
    detail          TEXT NOT NULL,               -- Decision.detail
    authentication  TEXT NOT NULL,               -- JSON: Authentication.to_json()
    raw             BLOB,                        -- the mail; NULL once decided
                                                 -- (releasing: posting it; a crash
                                                 -- leaves it to be released again)
    status          TEXT NOT NULL DEFAULT 'held'
                    CHECK (status IN ('held', 'releasing', 'released', 'discarded')),
    received_at     TEXT NOT NULL,
    decided_at      TEXT,
    decided_by      TEXT                         -- the owner's address
);
CREATE INDEX held_mail_thread ON held_mail(thread_id, status);

-- The outbox, rebuilt (SQLite cannot change a CHECK): a delivery may be the notice that
-- answers a refused reply ('refusal_notice': no thread, its payload says why).
CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('owner_notify', 'owner_digest', 'visitor_notify', 'resume_link',
                                'owner_login', 'template', 'refusal_notice')),
    thread_id   TEXT REFERENCES threads(id) ON DELETE CASCADE,  -- NULL: digest, login, notice
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
    CHECK ((thread_id IS NULL) = (kind IN ('owner_digest', 'owner_login', 'refusal_notice')))
);
INSERT INTO outbox_new SELECT id, kind, thread_id, recipient, not_before, status, attempts,
    last_error, payload, upto_seq, created_at, updated_at, channel, external_id, receipt
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE UNIQUE INDEX outbox_one_pending ON outbox(channel, kind, thread_id, recipient)
    WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_one_pending_digest ON outbox(kind, recipient)
    WHERE status = 'pending' AND kind = 'owner_digest';
CREATE INDEX outbox_due ON outbox(status, not_before);
CREATE INDEX outbox_last_sent ON outbox(kind, thread_id, recipient, status, upto_seq);
CREATE INDEX outbox_external_id ON outbox(external_id) WHERE external_id IS NOT NULL;
-- When each mailbox was last told that its reply was refused: one notice a day at
-- most, whatever spelling of the mailbox (relay/store/outbox_rows.mailbox_key).
CREATE TABLE refusal_notices (
    mailbox     TEXT PRIMARY KEY,            -- SHA-256 of the mailbox, as unconfirmed_sends
    notified_at TEXT NOT NULL
);
