-- callguard's whole schema. Idempotent: applied in one transaction at every start.
-- Phone numbers are the digits of their E.164 form in a bigint: +84912345678 -> 84912345678.

CREATE TABLE IF NOT EXISTS api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,          -- sha256 of the key; the key itself is never stored
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
-- The roles (service/auth.py Role). The check is replaced only when it lacks one, so a start
-- does not lock api_keys while other replicas serve.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'api_keys_role_check'
            AND pg_get_constraintdef(oid) LIKE '%''metrics''%'
    ) THEN
        ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
            CHECK (role IN ('client', 'operator', 'admin', 'metrics'));
    END IF;
END
$$;
-- The sources an operator key may import under. Empty for other roles, and for operator
-- keys made before sources were recorded: those import under none until given some
-- (`callguard keys sources`).
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS sources text[] NOT NULL DEFAULT '{}';

-- Secrets the service makes for itself on first start, shared by every replica.
CREATE TABLE IF NOT EXISTS settings (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Every report as received. reporter_hash is a keyed hash of the app's pseudonymous
-- reporter id, scoped by its API key: the id itself is never stored.
CREATE TABLE IF NOT EXISTS reports (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number            bigint NOT NULL,
    category          text NOT NULL,
    reporter_hash     bytea NOT NULL,
    description       text,
    occurred_at       timestamptz,
    received_at       timestamptz NOT NULL,
    api_key_id        bigint NOT NULL REFERENCES api_keys (id),
    possible_spoofing boolean NOT NULL DEFAULT false  -- the number was on the allowlist
);
CREATE INDEX IF NOT EXISTS reports_number_idx ON reports (number);
CREATE INDEX IF NOT EXISTS reports_reporter_idx ON reports (reporter_hash, received_at);
-- A report's details (reporter_hash, description, occurred_at) are erased after the
-- retention period (README, "Reporter privacy"); the report itself stays, and counts.
ALTER TABLE reports ALTER COLUMN reporter_hash DROP NOT NULL;
CREATE INDEX IF NOT EXISTS reports_details_idx ON reports (received_at)
    WHERE reporter_hash IS NOT NULL;

-- The community's tally of a reported number since its last delisting. A delisting
-- resets the tally (reports stay in `reports`) and starts a new epoch; reports after it
-- count afresh. Epochs, not timestamps, order reports and delistings, so replicas whose
-- clocks disagree still agree on what counts.
CREATE TABLE IF NOT EXISTS community_listings (
    number             bigint PRIMARY KEY,
    report_count       integer NOT NULL,
    categories         text[] NOT NULL,
    first_reported_at  timestamptz,
    last_reported_at   timestamptz,
    epoch              integer NOT NULL DEFAULT 0,
    delisted_at        timestamptz
);

-- Who has reported which number, once per reporter, and when and in which epoch they last
-- did: the verdict counts reporters of the current epoch whose last report is recent.
CREATE TABLE IF NOT EXISTS number_reporters (
    number            bigint NOT NULL,
    reporter_hash     bytea NOT NULL,
    first_reported_at timestamptz NOT NULL,
    last_reported_at  timestamptz NOT NULL,
    epoch             integer NOT NULL,
    PRIMARY KEY (number, reporter_hash)
);

-- Bulk imports by operators and police units. An import commits whole or not at all.
CREATE TABLE IF NOT EXISTS imports (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL,
    api_key_id       bigint NOT NULL REFERENCES api_keys (id),
    idempotency_key  text,
    created_at       timestamptz NOT NULL,
    rows             integer NOT NULL DEFAULT 0,
    accepted         integer NOT NULL DEFAULT 0,
    duplicates       integer NOT NULL DEFAULT 0,
    rejected         integer NOT NULL DEFAULT 0,
    mapped_legacy    integer NOT NULL DEFAULT 0,
    UNIQUE (api_key_id, idempotency_key)
);
-- sha256 of the list as parsed (after gzip decompression): a retry with the same
-- Idempotency-Key must send the same list, or it is refused rather than silently replayed.
-- NULL for imports made before it was recorded.
ALTER TABLE imports ADD COLUMN IF NOT EXISTS body_sha256 bytea;

-- Every row an import refused, with why; line numbers count the header as line 1.
CREATE TABLE IF NOT EXISTS import_errors (
    import_id  bigint NOT NULL REFERENCES imports (id),
    line       bigint NOT NULL,
    value      text NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- Listings by a trusted source (an operator's import, an admin): scam until delisted.
CREATE TABLE IF NOT EXISTS trusted_listings (
    number       bigint NOT NULL,
    source       text NOT NULL,
    category     text NOT NULL,
    note         text,
    listed_at    timestamptz NOT NULL,
    reported_at  timestamptz,
    -- Who listed it and by which import. Not foreign keys: an import merges a million
    -- rows at once, and a per-row referential check doubled its time.
    api_key_id   bigint,
    import_id    bigint,
    PRIMARY KEY (number, source)
);
-- BRIN: import ids follow insertion order, and a B-tree here slowed every import's merge.
CREATE INDEX IF NOT EXISTS trusted_listings_import_idx ON trusted_listings USING brin (import_id);

-- Verified numbers (official hotlines and the like): never flagged, whatever the reports.
CREATE TABLE IF NOT EXISTS allowlist (
    number      bigint PRIMARY KEY,
    owner       text NOT NULL,
    note        text,
    added_at    timestamptz NOT NULL,
    api_key_id  bigint REFERENCES api_keys (id)
);

CREATE TABLE IF NOT EXISTS appeals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number           bigint NOT NULL,
    contact          text NOT NULL,
    message          text NOT NULL,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'delisted', 'rejected')),
    created_at       timestamptz NOT NULL,
    api_key_id       bigint NOT NULL REFERENCES api_keys (id),
    resolved_at      timestamptz,
    resolved_by      bigint REFERENCES api_keys (id),
    resolution_note  text
);
CREATE INDEX IF NOT EXISTS appeals_status_idx ON appeals (status, id);
-- One open appeal per number per key. On a database from before the rule, the later
-- duplicates of an open appeal are rejected as such first (once: then the index exists),
-- so that the index can be made.
DO $$
BEGIN
    IF to_regclass('appeals_open_idx') IS NULL THEN
        UPDATE appeals a
        SET status = 'rejected', resolved_at = now(),
            resolution_note = 'duplicate of open appeal ' || k.first_id
        FROM (SELECT number, api_key_id, min(id) AS first_id FROM appeals
              WHERE status = 'open' GROUP BY number, api_key_id HAVING count(*) > 1) k
        WHERE a.status = 'open' AND a.number = k.number AND a.api_key_id = k.api_key_id
          AND a.id <> k.first_id;
    END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS appeals_open_idx ON appeals (number, api_key_id)
    WHERE status = 'open';

-- Every moderation action: who (a key, or the command line), what, when, why.
CREATE TABLE IF NOT EXISTS audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    api_key_id  bigint REFERENCES api_keys (id),
    actor       text NOT NULL,
    action      text NOT NULL,
    number      bigint,
    reason      text,
    detail      jsonb NOT NULL DEFAULT '{}'
);

-- The change log: every change to what is stored about a number (reported, listed,
-- delisted, allowlisted or not, a whole import), appended in the transaction that makes it.
-- Processes apply the changes past their cursor to their Bloom filters and caches, and
-- catch up from here after missing notifications. Rows are numbered under a lock taken
-- just before commit, so they commit in `seq` order: a reader never sees a higher seq
-- before a lower one. Pruned after a retention period; a process further behind rebuilds.
CREATE TABLE IF NOT EXISTS changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind       text NOT NULL
               CHECK (kind IN ('reported', 'listed', 'delisted', 'allowlisted', 'unallowlisted', 'imported')),
    number     bigint,  -- NULL for an import
    import_id  bigint,
    CHECK ((number IS NULL) <> (import_id IS NULL))
);

-- Saved Bloom filters, for a fast start: load the newest and apply the changes after its
-- cursor. A cache of what the tables say, never a source of truth; only the newest is kept.
CREATE TABLE IF NOT EXISTS filter_snapshots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cursor      bigint NOT NULL,  -- every change up to this seq is in the filter
    created_at  timestamptz NOT NULL,
    capacity    bigint NOT NULL,
    error_rate  double precision NOT NULL,
    entries     bigint NOT NULL,
    data        bytea NOT NULL
);

-- Verified reporters (docs/verdicts.md). A key's trust says whether it may vouch for its
-- users' own phone numbers ('attesting': the app verified them) or not ('community').
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS trust text NOT NULL DEFAULT 'community'
    CHECK (trust IN ('community', 'attesting'));
-- Reports a key may send a day, across its reporters and replicas; NULL for the default.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS reports_per_day integer
    CHECK (reports_per_day > 0);

-- A report's lane: 'verified' when an attesting key vouched for the reporter's phone (the
-- reporter hash is then the phone's, the same through every app), else 'community'. Reports
-- stored before lanes existed are community reports.
ALTER TABLE reports ADD COLUMN IF NOT EXISTS lane text NOT NULL DEFAULT 'community'
    CHECK (lane IN ('community', 'verified'));
CREATE INDEX IF NOT EXISTS reports_number_time_idx ON reports (number, received_at);

-- The called person saying a call was legitimate: counter-evidence to reports.
CREATE TABLE IF NOT EXISTS feedback (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number         bigint NOT NULL,
    verdict        text NOT NULL CHECK (verdict IN ('not_scam')),
    reporter_hash  bytea,
    lane           text NOT NULL CHECK (lane IN ('community', 'verified')),
    note           text,
    received_at    timestamptz NOT NULL,
    api_key_id     bigint NOT NULL REFERENCES api_keys (id)
);
CREATE INDEX IF NOT EXISTS feedback_reporter_idx ON feedback (reporter_hash, received_at);
CREATE INDEX IF NOT EXISTS feedback_number_idx ON feedback (number);

-- A reporter's word on a number is their latest: a report ('scam') or feedback ('not_scam').
ALTER TABLE number_reporters ADD COLUMN IF NOT EXISTS lane text NOT NULL DEFAULT 'community'
    CHECK (lane IN ('community', 'verified'));
ALTER TABLE number_reporters ADD COLUMN IF NOT EXISTS stance text NOT NULL DEFAULT 'scam'
    CHECK (stance IN ('scam', 'not_scam'));
-- A reporter's record (the numbers they spoke about) is read across numbers.
CREATE INDEX IF NOT EXISTS number_reporters_reporter_idx ON number_reporters (reporter_hash);

-- Reporter phones that are themselves listed as scams, as the reporters' keyed hashes: their
-- words count for nothing. Kept by the writers that list a number (reporting.py, moderation.py,
-- imports), which alone hold the hash key.
CREATE TABLE IF NOT EXISTS listed_reporters (
    reporter_hash  bytea PRIMARY KEY,
    listed_at      timestamptz NOT NULL
);

-- Reports per key per day (UTC), for the key's daily cap across replicas and its usual
-- share of reports (brigade checks).
CREATE TABLE IF NOT EXISTS key_report_days (
    api_key_id  bigint NOT NULL REFERENCES api_keys (id),
    day         date NOT NULL,
    reports     integer NOT NULL,
    PRIMARY KEY (api_key_id, day)
);
-- The network a report came from (an IPv4 /24, an IPv6 /48), as a keyed hash; erased with
-- the report's other details. Reports per network per day, for its usual share.
ALTER TABLE reports ADD COLUMN IF NOT EXISTS network bytea;
CREATE TABLE IF NOT EXISTS network_report_days (
    network  bytea NOT NULL,
    day      date NOT NULL,
    reports  integer NOT NULL,
    PRIMARY KEY (network, day)
);

-- Numbers waiting for a moderator: a suspected brigade. One open review per number.
CREATE TABLE IF NOT EXISTS reviews (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number       bigint NOT NULL,
    sign         text NOT NULL CHECK (sign IN ('newcomers', 'key_share', 'network_share')),
    detail       jsonb NOT NULL DEFAULT '{}',
    opened_at    timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'brigade', 'genuine')),
    decided_at   timestamptz,
    decided_by   bigint REFERENCES api_keys (id),
    note         text
);
CREATE UNIQUE INDEX IF NOT EXISTS reviews_open_idx ON reviews (number) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS reviews_status_idx ON reviews (status, id);

-- Feedback ('answered'), reviews ('reviewed') and a reporter phone listed or cleared
-- ('reweighed': the numbers it spoke about are judged anew) change verdicts too. The check is
-- replaced only when it lacks them; the log is kept short (pruned), so its scan is short.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'changes_kind_check'
            AND pg_get_constraintdef(oid) LIKE '%''reweighed''%'
    ) THEN
        ALTER TABLE changes DROP CONSTRAINT IF EXISTS changes_kind_check;
        ALTER TABLE changes ADD CONSTRAINT changes_kind_check CHECK (kind IN (
            'reported', 'listed', 'delisted', 'allowlisted', 'unallowlisted', 'imported',
            'answered', 'reviewed', 'reweighed'));
    END IF;
END
$$;

-- The lists phones hold (docs/lists.md): `scam` (numbers judged scam, with a category) and
-- `verified` (the allowlist, with owners). A publisher (one process at a time) judges the
-- numbers the change log says changed and writes a new version with its changes; every
-- process serves updates between versions from these tables and its memory.
CREATE TABLE IF NOT EXISTS list_versions (
    list          text NOT NULL CHECK (list IN ('scam', 'verified')),
    version       bigint NOT NULL,
    published_at  timestamptz NOT NULL,
    cursor        bigint NOT NULL,  -- every change up to this seq is judged in this version
    entries       bigint NOT NULL,
    sha256        bytea NOT NULL,   -- list_coding.checksum of the sorted numbers
    whole         boolean NOT NULL, -- every candidate judged afresh, not only changed ones
    PRIMARY KEY (list, version)
);
-- Each list's numbers as of its newest version.
CREATE TABLE IF NOT EXISTS list_entries (
    list     text NOT NULL,
    number   bigint NOT NULL,
    detail   text NOT NULL,         -- the category, or the owner
    since    timestamptz NOT NULL,  -- when it entered the list
    PRIMARY KEY (list, number)
);
-- What each version changed: a number's detail before (NULL: it was not listed) and after
-- (NULL: it left). Kept while clients may still hold the version before (list retention).
CREATE TABLE IF NOT EXISTS list_changes (
    list     text NOT NULL,
    version  bigint NOT NULL,
    number   bigint NOT NULL,
    before   text,
    after    text,
    PRIMARY KEY (list, version, number)
);

-- Moderators signed in to the pages under /admin with an admin key (service/web/moderators.py):
-- here, not in a process, so any replica serves a signed-in moderator. The cookie holds the
-- token; only its SHA-256 is stored. A session ends when it expires, when its moderator signs
-- out, or when its key is revoked (checked on every request).
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_hash  bytea PRIMARY KEY,
    key_id      bigint NOT NULL REFERENCES api_keys (id),
    csrf        text NOT NULL,  -- every form's hidden field must carry it
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
