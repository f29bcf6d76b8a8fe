-- Notification schema (SQLite). Keep in step with ../postgres/0001_notification.sql:
-- the same statements run against both, so column names and meanings match.

-- Events a consumer has handled: the event's effects and this row are written
-- in one transaction, so an event delivered again is recognised and skipped.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL CHECK (length(event_id) = 36),
    event_type   TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Whom to write to about an order, from its order.placed.v1.
CREATE TABLE order_contacts (
    order_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    -- NULL when the order carried no usable address: its e-mails are skipped.
    email      TEXT,
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY CHECK (length(id) = 36),
    event_id        TEXT NOT NULL CHECK (length(event_id) = 36),
    kind            TEXT NOT NULL CHECK (kind IN ('order_confirmation', 'order_shipped')),
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    -- Unix milliseconds: compared as numbers by the sender's queries.
    next_attempt_at INTEGER NOT NULL,
    sent_at         TEXT,
    -- At most one e-mail of a kind per event, whatever happens.
    UNIQUE (event_id, kind)
);

-- The sender's queue: pending messages by when they are due.
CREATE INDEX messages_due ON messages (status, next_attempt_at);
