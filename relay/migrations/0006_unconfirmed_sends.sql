-- Emails to an address its visitor has not confirmed (resume links, reply notices):
-- one per address a day whichever visitor or site asks, and a few addresses per
-- visitor a day (relay/store/outbox_rows.py). The address is kept as a SHA-256 digest,
-- for a day; the per-visitor count replaces visitors.unconfirmed_emails_sent, which
-- a new address reset.
CREATE TABLE unconfirmed_sends (
    address_hash  TEXT NOT NULL,
    visitor_id    TEXT,   -- NULL once the visitor is erased: the address keeps its cap
    sent_at       TEXT NOT NULL
);
CREATE INDEX unconfirmed_sends_address ON unconfirmed_sends(address_hash, sent_at);
CREATE INDEX unconfirmed_sends_visitor ON unconfirmed_sends(visitor_id, sent_at);
ALTER TABLE visitors DROP COLUMN unconfirmed_emails_sent;
