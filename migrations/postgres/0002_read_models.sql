-- Read models kept by the projection runner (see projections/). Every projection writes rows of
-- the same shape; `model` is "<projection>@<version>" so a new version can be built beside the live one.
CREATE TABLE projection_checkpoints (
    projection  text        PRIMARY KEY,
    tx          bigint      NOT NULL,
    pos         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE read_model_rows (
    model    text  NOT NULL,
    user_id  uuid  NOT NULL,
    -- byte order ("C"): sort keys are built to sort as bytes, whatever the database's collation
    row_id   text  COLLATE "C" NOT NULL,
    grp      text  NOT NULL,
    sort_key text  COLLATE "C" NOT NULL,
    doc      jsonb NOT NULL,
    PRIMARY KEY (model, user_id, row_id)
);
CREATE INDEX read_model_rows_order ON read_model_rows (model, user_id, sort_key, row_id);
