-- Cart schema (SQLite, the embedded store; Redis is the other store).
-- One row per line; name and price are as the catalog gave them when the
-- line was last changed.
CREATE TABLE cart_items (
    user_id          TEXT NOT NULL,
    product_id       TEXT NOT NULL CHECK (length(product_id) = 36),
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    name             TEXT NOT NULL,
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
