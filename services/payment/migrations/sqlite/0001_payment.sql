-- Payment schema (SQLite). Keep in step with ../postgres/0001_payment.sql:
-- the same statements run against both, so column names and meanings match.
-- No column holds a card number or CVC: only the last four digits and the brand.
CREATE TABLE charges (
    id              TEXT PRIMARY KEY CHECK (length(id) = 36),
    -- Same key, same charge: Charge is idempotent through this.
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'refunded')),
    decline_code    TEXT CHECK ((status = 'declined') = (decline_code IS NOT NULL)),
    card_last4      TEXT NOT NULL CHECK (length(card_last4) = 4),
    card_brand      TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    refunded_at     TEXT CHECK ((status = 'refunded') = (refunded_at IS NOT NULL))
);
