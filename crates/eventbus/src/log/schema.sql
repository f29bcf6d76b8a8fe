-- The embedded event log, schema version 1 (PRAGMA user_version).
-- Times are Unix milliseconds.

-- Every published event, in publish order. `msg_id` is the de-duplication
-- key: the envelope id, or `<id>:replay:<dead letter id>` for a replay.
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id       TEXT    NOT NULL UNIQUE,
    event_id     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    envelope     TEXT    NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_age ON events (published_at);

-- Durable consumers. Every event with seq <= position is settled for this
-- consumer (acknowledged, dead-lettered, or not matching its filter).
-- filter_types is a JSON array of types, filter_prefix ends with a dot;
-- both NULL means every event.
CREATE TABLE IF NOT EXISTS consumers (
    name          TEXT    PRIMARY KEY,
    filter        TEXT    NOT NULL,
    filter_types  TEXT,
    filter_prefix TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- The delivery a consumer has handed out and not settled: at most one row
-- per consumer (that is what keeps per-subject order). It may be handed out
-- again once visible_after has passed: the lease expired (ack_wait) or the
-- nack delay is over.
CREATE TABLE IF NOT EXISTS deliveries (
    consumer      TEXT    NOT NULL REFERENCES consumers (name) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    visible_after INTEGER NOT NULL,
    last_error    TEXT,
    PRIMARY KEY (consumer, seq)
);

-- Events a consumer gave up on, with a copy of the envelope (so retention
-- of `events` never removes a dead letter's content).
CREATE TABLE IF NOT EXISTS dead_letters (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    envelope TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    error    TEXT    NOT NULL,
    dead_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_consumer ON dead_letters (consumer, id);

PRAGMA user_version = 1;
