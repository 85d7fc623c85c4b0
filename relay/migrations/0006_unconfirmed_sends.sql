-- Emails to an address its visitor has not confirmed (resume links, reply notices):
-- one a day per mailbox whichever visitor or site asks, a few mailboxes per visitor a
-- day (relay/store/outbox_rows.py). A row per mailbox, taken by the email that goes:
-- a SHA-256 digest of the address without its +tag, kept a day. It replaces
-- visitors.unconfirmed_emails_sent, which a new address reset.
CREATE TABLE unconfirmed_sends (
    mailbox     TEXT PRIMARY KEY,
    visitor_id  TEXT,      -- NULL once the visitor is erased: the mailbox keeps its cap
    outbox_id   INTEGER NOT NULL,  -- the email that took it (its retries may send)
    sent_at     TEXT NOT NULL
);
CREATE INDEX unconfirmed_sends_visitor ON unconfirmed_sends(visitor_id, sent_at);
CREATE INDEX unconfirmed_sends_age ON unconfirmed_sends(sent_at);
ALTER TABLE visitors DROP COLUMN unconfirmed_emails_sent;
-- Suppressions are matched by mailbox too (ann+x@ is ann@): the same digest.
ALTER TABLE suppressed ADD COLUMN mailbox TEXT;
CREATE INDEX suppressed_mailbox ON suppressed(mailbox);
