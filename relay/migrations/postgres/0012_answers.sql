-- Automatic answers (relay/answers): the owner's own answers, per site and language.
-- The *_terms columns hold the search terms relay/answers/words.py makes of each text
-- (folded, stemmed, stop words out): both engines index the very same words, here as
-- a weighted tsvector (question A, alternatives B, answer D) over the 'simple' config.
CREATE TABLE answers (
    num               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    site_id           TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    language          TEXT NOT NULL,
    question          TEXT NOT NULL,
    alternatives      TEXT NOT NULL DEFAULT '[]',   -- JSON: other ways to ask it
    answer            TEXT NOT NULL,
    question_terms    TEXT NOT NULL,
    alternative_terms TEXT NOT NULL,
    answer_terms      TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    search            tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', question_terms), 'A')
        || setweight(to_tsvector('simple', alternative_terms), 'B')
        || setweight(to_tsvector('simple', answer_terms), 'D')
    ) STORED
);
CREATE INDEX answers_site ON answers(site_id, language);
CREATE INDEX answers_search ON answers USING gin (search);

-- Bumped in the transaction of every change to a site's answers: what a relay's cache
-- of them compares (a count or a timestamp can stay the same across an edit).
CREATE TABLE answer_revisions (
    site_id  TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    revision INTEGER NOT NULL
);

-- An automatic message names the answer it sent (NULL for every other message): the
-- owner sees which one, and a thread gets each answer once.
ALTER TABLE messages ADD COLUMN answer_id TEXT;
