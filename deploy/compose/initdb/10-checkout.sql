-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/checkout-db-url.
CREATE ROLE checkout LOGIN PASSWORD 'dev-only-checkout-password';
CREATE DATABASE checkout OWNER checkout;
