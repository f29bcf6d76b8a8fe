-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/accounts-db-url.
CREATE ROLE accounts LOGIN PASSWORD 'dev-only-accounts-password';
CREATE DATABASE accounts OWNER accounts;
