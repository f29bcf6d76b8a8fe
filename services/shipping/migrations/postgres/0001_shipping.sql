-- Shipping schema (PostgreSQL). Keep in step with ../sqlite/0001_shipping.sql.
-- Text keys compare bytewise (COLLATE "C"), as SQLite compares them.
CREATE TABLE shipments (
    id           TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    -- One shipment per order: CreateShipment is idempotent through this.
    order_id     TEXT COLLATE "C" NOT NULL UNIQUE,
    tracking_id  TEXT COLLATE "C" NOT NULL UNIQUE CHECK (length(tracking_id) = 15),
    status       TEXT NOT NULL CHECK (status IN ('created', 'shipped', 'delivered')),
    name         TEXT NOT NULL,
    line1        TEXT NOT NULL,
    line2        TEXT NOT NULL,
    city         TEXT NOT NULL,
    postal_code  TEXT NOT NULL,
    country_code CHAR(2) NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE shipment_items (
    shipment_id       TEXT COLLATE "C" NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL CHECK (position >= 0),
    sku               TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    unit_weight_grams INTEGER NOT NULL CHECK (unit_weight_grams >= 0),
    PRIMARY KEY (shipment_id, position)
);
