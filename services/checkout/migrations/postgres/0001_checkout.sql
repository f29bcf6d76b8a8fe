-- Checkout schema (PostgreSQL). Keep in step with ../sqlite/0001_checkout.sql.
-- An order row IS the saga's state: `step` is persisted after every step.
-- lease_until is epoch milliseconds: the instance in lease_owner drives the saga until then.
CREATE TABLE orders (
    id               TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    user_id          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'placed', 'failed')),
    step             TEXT NOT NULL,
    currency         CHAR(3) NOT NULL,
    items            TEXT NOT NULL DEFAULT '[]',
    items_total      BIGINT NOT NULL DEFAULT 0,
    shipping_cost    BIGINT NOT NULL DEFAULT 0,
    total            BIGINT NOT NULL DEFAULT 0,
    address          TEXT NOT NULL,
    charge_id        TEXT,
    failure_kind     TEXT,
    failure_reason   TEXT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_unfinished ON orders (step, lease_until);

CREATE TABLE outbox (
    id            TEXT COLLATE "C" PRIMARY KEY,
    aggregate_id  TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ
);

CREATE INDEX outbox_unpublished ON outbox (published_at, created_at);
