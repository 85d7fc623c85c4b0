-- PostgreSQL: the table of ../0006_unconfirmed_sends.sql.
CREATE TABLE unconfirmed_sends (
    mailbox     TEXT PRIMARY KEY,
    visitor_id  TEXT,
    outbox_id   BIGINT NOT NULL,
    sent_at     TEXT NOT NULL
);
CREATE INDEX unconfirmed_sends_visitor ON unconfirmed_sends(visitor_id, sent_at);
CREATE INDEX unconfirmed_sends_age ON unconfirmed_sends(sent_at);
ALTER TABLE visitors DROP COLUMN unconfirmed_emails_sent;
-- Suppressions are matched by mailbox too (ann+x@ is ann@): the same digest.
ALTER TABLE suppressed ADD COLUMN mailbox TEXT;
CREATE INDEX suppressed_mailbox ON suppressed(mailbox);
