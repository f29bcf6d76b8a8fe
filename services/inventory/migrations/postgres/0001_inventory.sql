-- Inventory schema (PostgreSQL). Keep in step with ../sqlite/0001_inventory.sql.
-- Keys compare bytewise (COLLATE "C") so ordering matches SQLite's.
-- The CHECKs are the last line of defence: a bug that would oversell fails
-- the transaction instead of storing negative stock.
CREATE TABLE stock (
    sku       TEXT COLLATE "C" PRIMARY KEY,
    available BIGINT NOT NULL CHECK (available >= 0),
    reserved  BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

CREATE TABLE reservations (
    order_id   TEXT COLLATE "C" PRIMARY KEY CHECK (length(order_id) BETWEEN 1 AND 64),
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'confirmed', 'released', 'expired')),
    -- Unix microseconds (UTC), so both engines compare it as a number.
    expires_at BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE reservation_items (
    order_id TEXT COLLATE "C" NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
    sku      TEXT COLLATE "C" NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    PRIMARY KEY (order_id, sku)
);

-- What the sweeper looks for: reservations still holding units.
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'reserved';
