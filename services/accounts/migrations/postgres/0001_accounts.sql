-- Accounts schema (PostgreSQL). Keep in step with ../sqlite/0001_accounts.sql.
-- Emails are stored lowercased by the service, so UNIQUE (email) makes them
-- unique case-insensitively.
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    -- argon2id PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL
);
