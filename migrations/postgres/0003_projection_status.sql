-- Which generation of each projection queries read, and what its runner is doing.
-- Blue-green rebuilds build "<name>@<version>#<generation>" beside the active model and switch
-- active_model (one statement) once the new generation has caught up with the live one; queries
-- resolve active_model in the statement that reads the rows.
CREATE TABLE projection_status (
    projection        text        PRIMARY KEY,
    active_model      text        NOT NULL,
    state             text        NOT NULL,            -- live | rebuilding | stopped
    detail            jsonb       NOT NULL DEFAULT '{}', -- rebuild progress, failing event
    events_per_sec    double precision NOT NULL DEFAULT 0,
    rebuild_requested boolean     NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL
);

-- One user's history in log order (replay, as-of queries).
CREATE INDEX events_user_log_order ON events (user_id, transaction_id, global_position);
