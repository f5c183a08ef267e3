-- Daily reconciliation (DAG iseller_accurate_reconciliation, page Reconciliation): do iSeller and
-- Accurate agree per outlet and local day, and on stock? One row per outlet and day checked (the
-- grid), the differences behind a red day (the day's list), and the stock differences of each check.
-- A day checked again replaces its differences; days already checked stay (history).
CREATE TABLE IF NOT EXISTS sync.reconciliation_days (
    outlet_id         text        NOT NULL,
    day               date        NOT NULL,  -- the shop's local day (settings timezone)
    status            text        NOT NULL CHECK (status IN ('green', 'red', 'error')),
    differences       integer     NOT NULL DEFAULT 0,
    difference_amount numeric     NOT NULL DEFAULT 0,  -- sum of the differences' amounts
    iseller           jsonb,                 -- iSeller's totals of the day
    accurate          jsonb,                 -- Accurate's totals of the day
    reason            text,                  -- status error: why the day could not be checked
    checked_at        timestamptz NOT NULL DEFAULT now(),
    dag_id            text,
    run_id            text,
    alerted_at        timestamptz,           -- the failure alert for this red day (sent once)
    PRIMARY KEY (outlet_id, day)
);
CREATE INDEX IF NOT EXISTS reconciliation_days_day ON sync.reconciliation_days (day DESC, outlet_id);

CREATE TABLE IF NOT EXISTS sync.reconciliation_differences (
    id              bigserial   PRIMARY KEY,
    outlet_id       text        NOT NULL,
    day             date        NOT NULL,
    class           text        NOT NULL CHECK (class IN ('not_synced', 'missing_in_accurate',
                        'changed_in_accurate', 'only_in_accurate', 'only_in_iseller')),
    data_type       text,                    -- sales_invoice, sales_receipt, sales_return
    target_module   text        NOT NULL,    -- Accurate module
    number          text,                    -- Accurate number
    source_number   text,                    -- iSeller order reference
    source_id       text,
    document_id     bigint REFERENCES sync.documents (id) ON DELETE SET NULL,
    accurate_id     bigint,
    expected_amount numeric,                 -- what iSeller / the ledger says
    accurate_amount numeric,                 -- what Accurate has
    amount          numeric     NOT NULL DEFAULT 0,  -- the size of the difference
    detail          text        NOT NULL,
    fix             text        NOT NULL,
    found_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reconciliation_differences_day
    ON sync.reconciliation_differences (outlet_id, day, id);
CREATE INDEX IF NOT EXISTS reconciliation_differences_document
    ON sync.reconciliation_differences (document_id);

CREATE TABLE IF NOT EXISTS sync.reconciliation_stock_checks (
    outlet_id     text        NOT NULL,
    checked_on    date        NOT NULL,
    warehouse     text        NOT NULL,
    items_checked integer     NOT NULL,
    differences   integer     NOT NULL,
    unexplained   integer     NOT NULL,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outlet_id, checked_on)
);

CREATE TABLE IF NOT EXISTS sync.reconciliation_stock_differences (
    outlet_id     text        NOT NULL,
    checked_on    date        NOT NULL,
    item_no       text        NOT NULL,
    warehouse     text        NOT NULL,
    iseller_qty   numeric     NOT NULL,
    accurate_qty  numeric     NOT NULL,
    explained_qty numeric     NOT NULL DEFAULT 0,  -- covered by transfers in transit / unsynced documents
    explanation   text,
    PRIMARY KEY (outlet_id, checked_on, item_no)
);
