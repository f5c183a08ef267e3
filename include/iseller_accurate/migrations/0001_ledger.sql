-- The sync ledger: one row per source document, the truth of what was sent where.
CREATE SCHEMA IF NOT EXISTS sync;

CREATE TABLE IF NOT EXISTS sync.documents (
    id              bigserial PRIMARY KEY,
    data_type       text        NOT NULL,  -- sales_invoice, sales_receipt, sales_return, customer, ...
    source_id       text        NOT NULL,  -- unique per data type, e.g. the iSeller order id
    source_key      text        NOT NULL,  -- the source record to re-read on refresh (e.g. order id)
    source_number   text,                  -- what operators know it by (#JKT01-1001)
    outlet_id       text,
    source_date     timestamptz NOT NULL,
    target_module   text        NOT NULL,  -- Accurate module, e.g. sales-invoice
    target_number   text,                  -- deterministic Accurate number (NULL: Accurate numbers it)
    target_id       bigint,
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'posting', 'synced', 'failed', 'blocked', 'skipped')),
    reason          text,
    transient       boolean     NOT NULL DEFAULT false,  -- last failure may pass by itself
    attempts        integer     NOT NULL DEFAULT 0,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    synced_at       timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    payload         jsonb,                 -- the mapped Accurate record
    refs            jsonb,                 -- payload fields filled from prerequisites at post time
    lookup          jsonb,                 -- for auto-numbered records: how to find them again
    source          jsonb,                 -- the source document, for audit and re-mapping
    dag_id          text,                  -- the task instance that last touched it
    run_id          text,
    task_id         text,
    map_index       integer,
    try_number      integer,
    UNIQUE (data_type, source_id)
);
CREATE INDEX IF NOT EXISTS documents_status_date ON sync.documents (status, source_date);
CREATE INDEX IF NOT EXISTS documents_type_date ON sync.documents (data_type, source_date DESC);
CREATE INDEX IF NOT EXISTS documents_outlet_date ON sync.documents (outlet_id, source_date DESC);
CREATE INDEX IF NOT EXISTS documents_date ON sync.documents (source_date DESC, id DESC);
CREATE INDEX IF NOT EXISTS documents_number ON sync.documents (target_module, target_number);

-- A document waits for every document it requires (a receipt for its invoice, ...).
CREATE TABLE IF NOT EXISTS sync.prerequisites (
    document_id bigint NOT NULL REFERENCES sync.documents (id) ON DELETE CASCADE,
    requires_id bigint NOT NULL REFERENCES sync.documents (id) ON DELETE CASCADE,
    PRIMARY KEY (document_id, requires_id)
);
CREATE INDEX IF NOT EXISTS prerequisites_requires ON sync.prerequisites (requires_id);

-- Which documents a DAG run is responsible for: clearing its task re-attempts exactly these.
CREATE TABLE IF NOT EXISTS sync.run_documents (
    dag_id      text   NOT NULL,
    run_id      text   NOT NULL,
    document_id bigint NOT NULL REFERENCES sync.documents (id) ON DELETE CASCADE,
    PRIMARY KEY (dag_id, run_id, document_id)
);
CREATE INDEX IF NOT EXISTS run_documents_document ON sync.run_documents (document_id);

-- Incremental bookmarks: advanced only after the extracted documents are stored.
CREATE TABLE IF NOT EXISTS sync.cursors (
    stream     text        PRIMARY KEY,
    position   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- iSeller order notifications received by the plugin (the real-time trigger).
CREATE TABLE IF NOT EXISTS sync.iseller_notifications (
    id           bigserial   PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    order_id     text,
    payload      jsonb       NOT NULL,
    verified     boolean     NOT NULL
);
