-- Catalog schema (SQLite). Keep in step with ../postgres/0001_catalog.sql:
-- the same statements run against both, so column names and meanings match.
CREATE TABLE categories (
    slug        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE products (
    id          TEXT PRIMARY KEY CHECK (length(id) = 36),
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    image_path  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE product_categories (
    product_id    TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category_slug TEXT NOT NULL REFERENCES categories (slug) ON DELETE RESTRICT,
    PRIMARY KEY (product_id, category_slug)
);

CREATE INDEX product_categories_by_category ON product_categories (category_slug, product_id);
