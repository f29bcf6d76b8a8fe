-- Notification schema (PostgreSQL). Keep in step with ../sqlite/0001_notification.sql.
-- Text keys compare bytewise (COLLATE "C"), as SQLite compares them.

-- Events a consumer has handled: the event's effects and this row are written
-- in one transaction, so an event delivered again is recognised and skipped.
CREATE TABLE processed_events (
    consumer     TEXT COLLATE "C" NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL CHECK (length(event_id) = 36),
    event_type   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Whom to write to about an order, from its order.placed.v1.
CREATE TABLE order_contacts (
    order_id   TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT NOT NULL,
    -- NULL when the order carried no usable address: its e-mails are skipped.
    email      TEXT,
    name       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE messages (
    id              TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    event_id        TEXT COLLATE "C" NOT NULL CHECK (length(event_id) = 36),
    kind            TEXT NOT NULL CHECK (kind IN ('order_confirmation', 'order_shipped')),
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    -- Unix milliseconds: compared as numbers by the sender's queries.
    next_attempt_at BIGINT NOT NULL,
    sent_at         TIMESTAMPTZ,
    -- At most one e-mail of a kind per event, whatever happens.
    UNIQUE (event_id, kind)
);

-- The sender's queue: pending messages by when they are due.
CREATE INDEX messages_due ON messages (status, next_attempt_at);
