-- Inventory schema (SQLite). Keep in step with ../postgres/0001_inventory.sql:
-- the same statements run against both, so column names and meanings match.
-- The CHECKs are the last line of defence: a bug that would oversell fails
-- the transaction instead of storing negative stock.
CREATE TABLE stock (
    sku       TEXT PRIMARY KEY,
    available INTEGER NOT NULL CHECK (available >= 0),
    reserved  INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

CREATE TABLE reservations (
    order_id   TEXT PRIMARY KEY CHECK (length(order_id) BETWEEN 1 AND 64),
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'confirmed', 'released', 'expired')),
    -- Unix microseconds (UTC), so both engines compare it as a number.
    expires_at INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE reservation_items (
    order_id TEXT NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
    sku      TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    PRIMARY KEY (order_id, sku)
);

-- What the sweeper looks for: reservations still holding units.
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'reserved';
