-- Read models kept by the projection runner: the same shape as on PostgreSQL.
CREATE TABLE projection_checkpoints (
    projection  TEXT    PRIMARY KEY,
    tx          INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL
);

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
