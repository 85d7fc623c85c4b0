-- PostgreSQL: the schema of ../0013_push.sql (Web Push: installation secrets, devices).

CREATE TABLE installation_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE push_subscriptions (
    id           TEXT PRIMARY KEY,
    site_id      TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    visitor_id   TEXT REFERENCES visitors(id) ON DELETE CASCADE,
    owner_email  TEXT,
    session_id   TEXT REFERENCES owner_sessions(id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL UNIQUE,
    p256dh       TEXT NOT NULL,
    auth         TEXT NOT NULL,
    user_agent   TEXT,
    created_at   TEXT NOT NULL,
    CHECK ((visitor_id IS NULL) <> (owner_email IS NULL))
);
CREATE INDEX push_subscriptions_visitor ON push_subscriptions(visitor_id);
CREATE INDEX push_subscriptions_site ON push_subscriptions(site_id);
CREATE INDEX push_subscriptions_owner ON push_subscriptions(owner_email);
