-- The central event store, embedded edition: the same shape as on PostgreSQL.
-- global_position is an explicit column (not rowid: VACUUM may renumber rowids), assigned by the
-- single writer as max + 1 inside the appending transaction, so its order is commit order.
CREATE TABLE events (
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence >= 1),
    event_type      TEXT    NOT NULL,
    event_version   TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    global_position INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    user_id         TEXT,
    recorded_at     TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_user_time ON events (user_id, recorded_at);

CREATE TABLE snapshots (
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    last_sequence  INTEGER NOT NULL CHECK (last_sequence >= 1),
    payload        TEXT    NOT NULL,
    taken_at       TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE command_receipts (
    user_id     TEXT NOT NULL,
    command_id  TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (user_id, command_id)
);
