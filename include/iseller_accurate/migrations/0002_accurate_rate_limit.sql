-- Deployment-wide rate limit for the Accurate API (8 requests per second and 8 in flight, shared by
-- every task of every worker). Used by iseller_accurate.clients.ratelimit.PostgresRateLimiter.
-- Idempotent: safe to run again (the limiter's ensure_schema() runs this same file).
CREATE SCHEMA IF NOT EXISTS sync;

-- Leaky bucket: next_at is the earliest time the next request may start. Each request moves it
-- forward by 1/rate seconds (from now if the bucket is idle), so starts are spaced across processes.
CREATE TABLE IF NOT EXISTS sync.rate_limit_bucket (
    name    text        PRIMARY KEY,
    next_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- In-flight slots: a request holds one row while it runs. holder is NULL when free; an expired lease
-- (a crashed worker) is free again after expires_at.
CREATE TABLE IF NOT EXISTS sync.rate_limit_lease (
    name       text        NOT NULL,
    slot       integer     NOT NULL CHECK (slot > 0),
    holder     text,
    expires_at timestamptz,
    PRIMARY KEY (name, slot)
);

INSERT INTO sync.rate_limit_bucket (name) VALUES ('accurate') ON CONFLICT DO NOTHING;
INSERT INTO sync.rate_limit_lease (name, slot)
SELECT 'accurate', slot FROM generate_series(1, 8) AS slot
ON CONFLICT DO NOTHING;
