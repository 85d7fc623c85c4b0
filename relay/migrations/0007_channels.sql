-- Deliveries, not only emails: each outbox row names the channel that carries it
-- (relay/channels). Inbound records are per channel: a provider's message id is
-- unique only within that provider, so (channel, external_id) is the key.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';

CREATE TABLE inbound_new (
    channel     TEXT NOT NULL DEFAULT 'email',
    external_id TEXT NOT NULL,               -- email: the Message-ID (or sha256: of the bytes)
    verdict     TEXT NOT NULL,
    thread_id   TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (channel, external_id)
);
INSERT INTO inbound_new (channel, external_id, verdict, thread_id, received_at)
    SELECT 'email', message_id, verdict, thread_id, received_at FROM inbound;
DROP TABLE inbound;
ALTER TABLE inbound_new RENAME TO inbound;
