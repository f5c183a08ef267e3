-- Results of the go-live preflight (DAG iseller_accurate_preflight), one row per run; the Preflight
-- page shows the latest. Problems are a JSON list of {severity, check, subject, message, fix}.
CREATE TABLE IF NOT EXISTS sync.preflight_runs (
    id          bigserial   PRIMARY KEY,
    dag_id      text        NOT NULL,
    run_id      text        NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL CHECK (status IN ('clean', 'warnings', 'failed')),
    errors      integer     NOT NULL,
    warnings    integer     NOT NULL,
    facts       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    problems    jsonb       NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX IF NOT EXISTS preflight_runs_checked_at ON sync.preflight_runs (checked_at DESC);
