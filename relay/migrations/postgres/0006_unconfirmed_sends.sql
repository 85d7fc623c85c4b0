-- PostgreSQL: the table of ../0006_unconfirmed_sends.sql.
CREATE TABLE unconfirmed_sends (
    address_hash  TEXT NOT NULL,
    visitor_id    TEXT,
    sent_at       TEXT NOT NULL
);
CREATE INDEX unconfirmed_sends_address ON unconfirmed_sends(address_hash, sent_at);
CREATE INDEX unconfirmed_sends_visitor ON unconfirmed_sends(visitor_id, sent_at);
ALTER TABLE visitors DROP COLUMN unconfirmed_emails_sent;
