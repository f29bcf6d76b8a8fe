-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/shipping-db-url.
CREATE ROLE shipping LOGIN PASSWORD 'dev-only-shipping-password';
CREATE DATABASE shipping OWNER shipping;
