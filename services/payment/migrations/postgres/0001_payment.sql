-- Payment schema (PostgreSQL). Keep in step with ../sqlite/0001_payment.sql.
-- Keys compare bytewise (COLLATE "C"), as in SQLite, so prefix ranges match.
-- No column holds a card number or CVC: only the last four digits and the brand.
CREATE TABLE charges (
    id              TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    -- Same key, same charge: Charge is idempotent through this.
    idempotency_key TEXT COLLATE "C" NOT NULL UNIQUE,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        CHAR(3) NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'refunded')),
    decline_code    TEXT CHECK ((status = 'declined') = (decline_code IS NOT NULL)),
    card_last4      CHAR(4) NOT NULL,
    card_brand      TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    refunded_at     TIMESTAMPTZ CHECK ((status = 'refunded') = (refunded_at IS NOT NULL))
);
