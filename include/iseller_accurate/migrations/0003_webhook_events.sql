-- Accurate webhook events (Accurate -> iSeller): stored durably before the receiver answers 200.
CREATE TABLE IF NOT EXISTS sync.webhook_events (
    id              bigserial   PRIMARY KEY,
    uuid            text        NOT NULL UNIQUE,      -- Accurate's event uuid: duplicates stored once
    event_type      text        NOT NULL,             -- RECEIVE_ITEM, PURCHASE_INVOICE, PURCHASE_RETURN, ITEM, ...
    database_id     bigint,
    event_timestamp timestamptz,                      -- Accurate's timestamp, parsed (either format)
    received_at     timestamptz NOT NULL DEFAULT now(),
    received_via    text        NOT NULL DEFAULT 'webhook' CHECK (received_via IN ('webhook', 'history')),
    payload         jsonb       NOT NULL,             -- the event exactly as received
    accurate_id     bigint,                           -- first data entry's <kind>Id
    accurate_number text,                             -- first data entry's <kind>No
    action          text,                             -- WRITE | DELETE
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'done', 'failed', 'ignored')),
    reason          text,
    attempts        integer     NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    processed_at    timestamptz,
    iseller_reference text,                           -- reference_code of the iSeller transfer made
    dag_id          text,                             -- the task instance that last touched it
    run_id          text,
    task_id         text,
    map_index       integer,
    try_number      integer,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_events_status ON sync.webhook_events (status, received_at);
CREATE INDEX IF NOT EXISTS webhook_events_received ON sync.webhook_events (received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_events_type ON sync.webhook_events (event_type, received_at DESC);

-- Requests the receiver refused (wrong token, malformed, oversized, not JSON), kept for audit.
CREATE TABLE IF NOT EXISTS sync.webhook_rejections (
    id           bigserial   PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    remote_addr  text,
    status_code  integer     NOT NULL,
    reason       text        NOT NULL,
    content_type text,
    body_size    integer,
    body_excerpt text                                 -- first bytes only; never the token
);
