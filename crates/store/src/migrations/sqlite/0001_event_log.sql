-- The append-only event log. Rows are keyed by their global position, so inserts land at the end
-- of the table's b-tree; payload and metadata are stored as the exact JSON text that was hashed.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        BLOB    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    command_id      BLOB    NOT NULL,
    command_index   INTEGER NOT NULL,
    command_events  INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    stream_hash     BLOB    NOT NULL,
    global_hash     BLOB    NOT NULL
);
CREATE UNIQUE INDEX events_stream ON events (stream_id, stream_version);

-- One append per command id: its first event (command_index 0) is unique by command id, and
-- says how many events the append wrote (they are contiguous). A retry finds it here; a
-- writer that did not look first is stopped by the index. Neither column is hashed: both
-- follow from the rows' order.
CREATE UNIQUE INDEX events_command ON events (command_id) WHERE command_index = 0;

-- The last record of the log: a truncated tail is detected against it.
CREATE TABLE log_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    position        INTEGER NOT NULL,
    global_hash     BLOB    NOT NULL,
    recorded_at     INTEGER NOT NULL
);
INSERT INTO log_head (id, position, global_hash, recorded_at) VALUES (1, 0, zeroblob(32), 0);
