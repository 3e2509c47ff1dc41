-- callguard's whole schema. Idempotent: applied in one transaction at every start.
-- Phone numbers are the digits of their E.164 form in a bigint: +84912345678 -> 84912345678.

CREATE TABLE IF NOT EXISTS api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('client', 'operator', 'admin')),
    key_hash    bytea NOT NULL UNIQUE,          -- sha256 of the key; the key itself is never stored
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Secrets the service makes for itself on first start, shared by every replica.
CREATE TABLE IF NOT EXISTS settings (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Every report as received. reporter_hash is a keyed hash of the app's pseudonymous
-- reporter id: the id itself is never stored.
CREATE TABLE IF NOT EXISTS reports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number         bigint NOT NULL,
    category       text NOT NULL,
    reporter_hash  bytea NOT NULL,
    description    text,
    occurred_at    timestamptz,
    received_at    timestamptz NOT NULL DEFAULT now(),
    api_key_id     bigint NOT NULL REFERENCES api_keys (id)
);
CREATE INDEX IF NOT EXISTS reports_number_idx ON reports (number);

-- Who has reported which number, once per reporter: reporter_count counts these rows.
CREATE TABLE IF NOT EXISTS number_reporters (
    number         bigint NOT NULL,
    reporter_hash  bytea NOT NULL,
    PRIMARY KEY (number, reporter_hash)
);

-- One row per listed number: the summary a lookup reads by primary key. Every number
-- here is in each process's Bloom filter.
CREATE TABLE IF NOT EXISTS listings (
    number             bigint PRIMARY KEY,
    report_count       integer NOT NULL,
    reporter_count     integer NOT NULL,
    categories         text[] NOT NULL,
    first_reported_at  timestamptz NOT NULL,
    last_reported_at   timestamptz NOT NULL
);
