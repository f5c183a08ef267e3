-- Register shifts whose orders a sales run has read and stored in the ledger (by the POS trigger or
-- by the shift sweep). The sweep syncs every closed shift not listed here, so a shift whose trigger
-- never arrived (DAG unavailable, hook gave up) is still synced, and a listed one is not read again.
CREATE TABLE IF NOT EXISTS sync.register_shifts_read (
    register_shift_id text PRIMARY KEY,
    register_id       text NOT NULL,
    outlet_id         text,
    open_date         timestamptz,
    closed_date       timestamptz,
    orders            integer NOT NULL DEFAULT 0,
    read_by           text NOT NULL,          -- 'trigger' or 'sweep'
    dag_id            text,
    run_id            text,
    first_read_at     timestamptz NOT NULL DEFAULT now(),
    last_read_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS register_shifts_read_closed ON sync.register_shifts_read (closed_date);
