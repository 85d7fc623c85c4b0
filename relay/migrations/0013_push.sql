-- Web Push (relay/push): the installation's secrets and the devices that take pushes.

-- Secrets of the whole installation, not of one relay's data directory: relays sharing
-- PostgreSQL must sign with the same VAPID key, or browsers refuse what the others send
-- (a subscription is bound to the key it was made with). Inserted if absent, never
-- replaced: two relays racing on first use end up with the same value.
CREATE TABLE installation_secrets (
    name        TEXT PRIMARY KEY,            -- e.g. 'vapid_private_key'
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- A browser's PushSubscription: a visitor's device (visitor_id) or an owner's (owner_email,
-- and the inbox session it was made in, so signing out everywhere removes it). One row
-- per endpoint: the same device subscribing again replaces keys and holder. A visitor's
-- erasure deletes theirs by cascade.
CREATE TABLE push_subscriptions (
    id           TEXT PRIMARY KEY,
    site_id      TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    visitor_id   TEXT REFERENCES visitors(id) ON DELETE CASCADE,
    owner_email  TEXT,                       -- lowercased
    session_id   TEXT REFERENCES owner_sessions(id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL UNIQUE,       -- the URL pushes are POSTed to (checked: relay/push/endpoints.py)
    p256dh       TEXT NOT NULL,              -- the device's P-256 public key, base64url
    auth         TEXT NOT NULL,              -- its authentication secret, base64url
    user_agent   TEXT,                       -- a short device label for the settings list
    created_at   TEXT NOT NULL,
    CHECK ((visitor_id IS NULL) <> (owner_email IS NULL))
);
CREATE INDEX push_subscriptions_visitor ON push_subscriptions(visitor_id);
CREATE INDEX push_subscriptions_site ON push_subscriptions(site_id);
CREATE INDEX push_subscriptions_owner ON push_subscriptions(owner_email);
