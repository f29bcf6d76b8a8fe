-- Shipping schema (SQLite). Keep in step with ../postgres/0001_shipping.sql:
-- the same statements run against both, so column names and meanings match.
CREATE TABLE shipments (
    id           TEXT PRIMARY KEY CHECK (length(id) = 36),
    -- One shipment per order: CreateShipment is idempotent through this.
    order_id     TEXT NOT NULL UNIQUE,
    tracking_id  TEXT NOT NULL UNIQUE CHECK (length(tracking_id) = 15),
    status       TEXT NOT NULL CHECK (status IN ('created', 'shipped', 'delivered')),
    name         TEXT NOT NULL,
    line1        TEXT NOT NULL,
    line2        TEXT NOT NULL,
    city         TEXT NOT NULL,
    postal_code  TEXT NOT NULL,
    country_code TEXT NOT NULL CHECK (length(country_code) = 2),
    created_at   TEXT NOT NULL
);

CREATE TABLE shipment_items (
    shipment_id       TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL CHECK (position >= 0),
    sku               TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    unit_weight_grams INTEGER NOT NULL CHECK (unit_weight_grams >= 0),
    PRIMARY KEY (shipment_id, position)
);
