-- The read-model file of the embedded store (`<name>.read-models.db` beside the log file,
-- store/src/sqlite.rs): what the projection runners and the relay derive from the log, written
-- by a connection of its own so command appends never wait for it. The same tables as
-- migrations/sqlite/0002-0004 (which created them in the log file before 0005 moved them here).

-- Checkpoints: where each projection (and the event relay) has read the log to.
CREATE TABLE projection_checkpoints (
    projection  TEXT    PRIMARY KEY,
    tx          INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- Read-model rows of every projection (projections/src/read_models.rs).
CREATE TABLE read_model_rows (
    model    TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    row_id   TEXT NOT NULL,
    grp      TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (model, user_id, row_id)
);
CREATE INDEX read_model_rows_order ON read_model_rows (model, user_id, sort_key, row_id);

-- Which generation of each projection queries read, and what its runner is doing.
CREATE TABLE projection_status (
    projection        TEXT    PRIMARY KEY,
    active_model      TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    detail            TEXT    NOT NULL DEFAULT '{}',
    events_per_sec    REAL    NOT NULL DEFAULT 0,
    rebuild_requested INTEGER NOT NULL DEFAULT 0,
    updated_at        TEXT    NOT NULL
);

-- Full-text search over journal entries (projections/src/journal_search.rs).
-- journal_search_keys gives each journal_entries row a stable integer id (INTEGER PRIMARY KEY:
-- VACUUM never renumbers it, unlike read_model_rows' implicit rowid); journal_search is a
-- contentless FTS5 index of the rows' text under that id. Triggers keep both in step with
-- read_model_rows: an insert, the update an upsert (ON CONFLICT DO UPDATE) becomes, a delete
-- (also when a retired generation is dropped).
CREATE TABLE journal_search_keys (
    id      INTEGER PRIMARY KEY,
    model   TEXT NOT NULL,
    user_id TEXT NOT NULL,
    row_id  TEXT NOT NULL,
    UNIQUE (model, user_id, row_id)
);

CREATE VIRTUAL TABLE journal_search USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER journal_search_insert AFTER INSERT ON read_model_rows
WHEN new.model GLOB 'journal_entries@*'
BEGIN
    INSERT INTO journal_search_keys (model, user_id, row_id)
        VALUES (new.model, new.user_id, new.row_id);
    INSERT INTO journal_search (rowid, text)
        SELECT id, COALESCE(json_extract(new.doc, '$.text'), '') FROM journal_search_keys
        WHERE model = new.model AND user_id = new.user_id AND row_id = new.row_id;
END;

CREATE TRIGGER journal_search_update AFTER UPDATE ON read_model_rows
WHEN old.model GLOB 'journal_entries@*' OR new.model GLOB 'journal_entries@*'
BEGIN
    DELETE FROM journal_search WHERE rowid IN (
        SELECT id FROM journal_search_keys
        WHERE model = old.model AND user_id = old.user_id AND row_id = old.row_id);
    DELETE FROM journal_search_keys
        WHERE model = old.model AND user_id = old.user_id AND row_id = old.row_id;
    INSERT INTO journal_search_keys (model, user_id, row_id)
        SELECT new.model, new.user_id, new.row_id WHERE new.model GLOB 'journal_entries@*';
    INSERT INTO journal_search (rowid, text)
        SELECT id, COALESCE(json_extract(new.doc, '$.text'), '') FROM journal_search_keys
        WHERE model = new.model AND user_id = new.user_id AND row_id = new.row_id;
END;

CREATE TRIGGER journal_search_delete AFTER DELETE ON read_model_rows
WHEN old.model GLOB 'journal_entries@*'
BEGIN
    DELETE FROM journal_search WHERE rowid IN (
        SELECT id FROM journal_search_keys
        WHERE model = old.model AND user_id = old.user_id AND row_id = old.row_id);
    DELETE FROM journal_search_keys
        WHERE model = old.model AND user_id = old.user_id AND row_id = old.row_id;
END;
