-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/payment-db-url.
CREATE ROLE payment LOGIN PASSWORD 'dev-only-payment-password';
CREATE DATABASE payment OWNER payment;
