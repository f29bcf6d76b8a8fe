-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/inventory-db-url.
CREATE ROLE inventory LOGIN PASSWORD 'dev-only-inventory-password';
CREATE DATABASE inventory OWNER inventory;
