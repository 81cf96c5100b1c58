-- The read models move to their own file (store/src/sqlite.rs: `<name>.read-models.db`, attached
-- to the log file's connections as `read_models`, migrated by migrations/sqlite-read-models
-- first): SQLite has one writer per file, and command appends waited behind read-model commits.
-- Rows, checkpoints and status are copied (no rebuild, no re-publication by the relay; the
-- journal search index is refilled by the new file's triggers), then dropped here so unqualified
-- names find the new tables.
INSERT OR REPLACE INTO read_models.projection_checkpoints SELECT * FROM main.projection_checkpoints;
INSERT OR REPLACE INTO read_models.projection_status SELECT * FROM main.projection_status;
INSERT OR REPLACE INTO read_models.read_model_rows SELECT * FROM main.read_model_rows;
DROP TABLE main.journal_search;
DROP TABLE main.journal_search_keys;
DROP TABLE main.read_model_rows;
DROP TABLE main.projection_status;
DROP TABLE main.projection_checkpoints;
