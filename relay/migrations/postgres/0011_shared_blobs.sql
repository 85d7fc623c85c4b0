-- The bytes of photos and files when several relays share the database
-- (relay/store/blobs.py): PostgreSQL holds them, each relay's data dir caches them.
-- A blob is its parts, then its row, written in one transaction: readers look for the
-- row first, so the row is the commit point. pg_dump backs them up with the rest.
CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,           -- SHA-256 of the bytes, hex (attachments.digest)
    size       BIGINT NOT NULL,
    created_at TEXT NOT NULL               -- a sweep spares younger ones (an upload in flight)
);
CREATE TABLE blob_parts (
    digest TEXT NOT NULL,
    part   INTEGER NOT NULL,               -- 0, 1, ... in order
    data   BYTEA NOT NULL,                 -- up to 1 MiB
    PRIMARY KEY (digest, part)
);
-- Photos and PDFs do not compress: store them out of line as they are, without
-- PostgreSQL trying first.
ALTER TABLE blob_parts ALTER COLUMN data SET STORAGE EXTERNAL;
