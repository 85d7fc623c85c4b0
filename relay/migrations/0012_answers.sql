-- Automatic answers (relay/answers): the owner's own answers, per site and language.
-- The *_terms columns hold the search terms relay/answers/words.py makes of each text
-- (folded, stemmed, stop words out), so that both engines index the very same words.
-- `num` is the full-text index's rowid: an INTEGER PRIMARY KEY never changes (a plain
-- rowid may, on VACUUM, and would corrupt an external-content index).
CREATE TABLE answers (
    num               INTEGER PRIMARY KEY,
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
    updated_at        TEXT NOT NULL
);
CREATE INDEX answers_site ON answers(site_id, language);

CREATE VIRTUAL TABLE answers_fts USING fts5(
    question_terms, alternative_terms, answer_terms,
    content = 'answers', content_rowid = 'num'
);
CREATE TRIGGER answers_fts_insert AFTER INSERT ON answers BEGIN
    INSERT INTO answers_fts (rowid, question_terms, alternative_terms, answer_terms)
    VALUES (new.num, new.question_terms, new.alternative_terms, new.answer_terms);
END;
CREATE TRIGGER answers_fts_delete AFTER DELETE ON answers BEGIN
    INSERT INTO answers_fts (answers_fts, rowid, question_terms, alternative_terms, answer_terms)
    VALUES ('delete', old.num, old.question_terms, old.alternative_terms, old.answer_terms);
END;
CREATE TRIGGER answers_fts_update AFTER UPDATE ON answers BEGIN
    INSERT INTO answers_fts (answers_fts, rowid, question_terms, alternative_terms, answer_terms)
    VALUES ('delete', old.num, old.question_terms, old.alternative_terms, old.answer_terms);
    INSERT INTO answers_fts (rowid, question_terms, alternative_terms, answer_terms)
    VALUES (new.num, new.question_terms, new.alternative_terms, new.answer_terms);
END;

-- Bumped in the transaction of every change to a site's answers: what a relay's cache
-- of them compares (a count or a timestamp can stay the same across an edit).
CREATE TABLE answer_revisions (
    site_id  TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    revision INTEGER NOT NULL
);

-- An automatic message names the answer it sent (NULL for every other message): the
-- owner sees which one, and a thread gets each answer once.
ALTER TABLE messages ADD COLUMN answer_id TEXT;
