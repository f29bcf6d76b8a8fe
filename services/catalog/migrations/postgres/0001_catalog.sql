-- Catalog schema (PostgreSQL). Keep in step with ../sqlite/0001_catalog.sql.
-- Ids compare bytewise (COLLATE "C") so keyset pagination orders them exactly
-- as SQLite does.
CREATE TABLE categories (
    slug        TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE products (
    id          TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency    CHAR(3) NOT NULL,
    image_path  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE product_categories (
    product_id    TEXT COLLATE "C" NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category_slug TEXT COLLATE "C" NOT NULL REFERENCES categories (slug) ON DELETE RESTRICT,
    PRIMARY KEY (product_id, category_slug)
);

CREATE INDEX product_categories_by_category ON product_categories (category_slug, product_id);
