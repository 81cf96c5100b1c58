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

CREATE INDEX events_user_log_order ON events (user_id, global_position);
