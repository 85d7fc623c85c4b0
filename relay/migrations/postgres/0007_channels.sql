-- Deliveries, not only emails: each outbox row names the channel that carries it
-- (relay/channels). Inbound records are per channel: a provider's message id is
-- unique only within that provider, so (channel, external_id) is the key.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';

ALTER TABLE inbound ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE inbound RENAME COLUMN message_id TO external_id;
ALTER TABLE inbound DROP CONSTRAINT inbound_pkey;
ALTER TABLE inbound ADD PRIMARY KEY (channel, external_id);
