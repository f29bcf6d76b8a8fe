-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/catalog-db-url.
CREATE ROLE catalog LOGIN PASSWORD 'dev-only-catalog-password';
CREATE DATABASE catalog OWNER catalog;
