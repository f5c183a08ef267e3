-- Accurate -> iSeller: what the webhook ingestion did, next to the events of 0003 (nothing renamed).

-- A failure that may pass by itself (iSeller or Accurate unavailable): the task is retried by Airflow.
ALTER TABLE sync.webhook_events ADD COLUMN IF NOT EXISTS transient boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS webhook_events_run ON sync.webhook_events (dag_id, run_id);
CREATE INDEX IF NOT EXISTS webhook_events_pending
    ON sync.webhook_events (COALESCE(event_timestamp, received_at), id) WHERE status = 'pending';

-- Every iSeller transfer made for an Accurate purchase document, one row per transfer. A row is
-- written ('creating') before CreateTransfer is called, so a lost answer or a crash is settled by
-- looking the reference code up in iSeller before anything is sent again. The sum of a document's
-- transfers (in = +, out = -) is what iSeller already holds for it: an edited or deleted document
-- is brought in line with an adjusting transfer of the difference.
CREATE TABLE IF NOT EXISTS sync.webhook_transfers (
    id                      bigserial   PRIMARY KEY,
    reference_code          text        NOT NULL UNIQUE,  -- ACC-RI-<number>[-n], the iSeller reference_code
    document_type           text        NOT NULL,         -- Accurate module: receive-item, purchase-invoice, purchase-return
    accurate_id             bigint      NOT NULL,
    accurate_number         text        NOT NULL,
    outlet_id               text        NOT NULL,
    outlet_code             text        NOT NULL,
    transfer_type           text        NOT NULL CHECK (transfer_type IN ('in', 'out')),
    lines                   jsonb       NOT NULL,         -- [{"sku", "quantity"}] as sent
    status                  text        NOT NULL DEFAULT 'creating' CHECK (status IN ('creating', 'created')),
    iseller_transfer_id     text,
    iseller_transfer_number text,
    event_id                bigint      REFERENCES sync.webhook_events (id) ON DELETE SET NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    confirmed_at            timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_transfers_document ON sync.webhook_transfers (document_type, accurate_id);
CREATE INDEX IF NOT EXISTS webhook_transfers_event ON sync.webhook_transfers (event_id);

-- DAG runs that have claimed pending events: a cleared task re-processes its own events only.
CREATE TABLE IF NOT EXISTS sync.webhook_runs (
    dag_id     text        NOT NULL,
    run_id     text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id)
);

-- The Accurate webhook subscription as last renewed (one row).
CREATE TABLE IF NOT EXISTS sync.webhook_subscription (
    id            boolean     PRIMARY KEY DEFAULT true CHECK (id),
    renewed_at    timestamptz,
    expires_at    timestamptz,       -- Accurate's expiredDate (its local time, read as Asia/Jakarta)
    expires_text  text,              -- expiredDate exactly as answered
    last_error    text,
    last_error_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
