-- The central event store: one append-only log for every pillar.
-- postgres-es's columns (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
-- metadata; the primary key gives optimistic concurrency) plus the product's own.
CREATE TABLE events (
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 1) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         jsonb                        NOT NULL,
    metadata        jsonb                        NOT NULL,
    -- one global order across all aggregates (taken at insert, visible at commit)
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    -- the writing transaction: readers order by (transaction_id, global_position) and stay below
    -- pg_snapshot_xmin(pg_current_snapshot()), so no event is ever skipped
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid                         NOT NULL,
    user_id         uuid,
    recorded_at     timestamptz                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_log_order ON events (transaction_id, global_position);
CREATE INDEX events_user_time ON events (user_id, recorded_at);

-- One snapshot per aggregate, replaced when a newer one is taken (never one row per snapshot).
CREATE TABLE snapshots (
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    last_sequence  bigint      NOT NULL CHECK (last_sequence >= 1),
    payload        jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Idempotency: the receipt of every command sent with a command_id, written in the same
-- transaction as its events.
CREATE TABLE command_receipts (
    user_id     uuid        NOT NULL,
    command_id  text        NOT NULL,
    receipt     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, command_id)
);
