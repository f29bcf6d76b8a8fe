-- Accounts schema (SQLite). Keep in step with ../postgres/0001_accounts.sql:
-- the same statements run against both, so column names and meanings match.
-- Emails are stored lowercased by the service, so UNIQUE (email) makes them
-- unique case-insensitively.
CREATE TABLE users (
    id            TEXT PRIMARY KEY CHECK (length(id) = 36),
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    -- argon2id PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at    TEXT NOT NULL
);
