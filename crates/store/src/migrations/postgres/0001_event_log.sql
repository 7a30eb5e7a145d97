-- The append-only event log. Global positions are assigned by the single writer that holds the
-- log_head row lock, so they are contiguous and become visible in order; payload and metadata
-- are TEXT (not JSONB) because the hash chain covers the exact bytes that were written.
CREATE TABLE events (
    position        BIGINT  PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    stream_version  BIGINT  NOT NULL,
    event_id        UUID    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    command_id      UUID    NOT NULL,
    command_index   INTEGER NOT NULL,
    command_events  INTEGER NOT NULL,
    recorded_at     BIGINT  NOT NULL,
    stream_hash     BYTEA   NOT NULL,
    global_hash     BYTEA   NOT NULL
);
CREATE UNIQUE INDEX events_stream ON events (stream_id, stream_version);

-- One append per command id: its first event (command_index 0) is unique by command id, and
-- says how many events the append wrote (they are contiguous). A retry finds it here; a
-- writer that did not look first is stopped by the index. Neither column is hashed: both
-- follow from the rows' order.
CREATE UNIQUE INDEX events_command ON events (command_id) WHERE command_index = 0;

-- The last record of the log. Its row lock is the log's write lock: held from the start of a
-- batch until after its commit is visible, so positions never become visible out of order.
CREATE TABLE log_head (
    id              SMALLINT PRIMARY KEY CHECK (id = 1),
    position        BIGINT  NOT NULL,
    global_hash     BYTEA   NOT NULL,
    recorded_at     BIGINT  NOT NULL
);
INSERT INTO log_head (id, position, global_hash, recorded_at)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);
