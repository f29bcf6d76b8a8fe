-- Dev only: one database and one role per service (database per service).
-- The password matches secrets/notification-db-url.
CREATE ROLE notification LOGIN PASSWORD 'dev-only-notification-password';
CREATE DATABASE notification OWNER notification;
