-- Indexes for the operator pages (Sync Status, Webhook Log): newest first, paged by keyset
-- (date, id), filtered by status. The "needs attention" view and the status counts read failed and
-- blocked rows through these without touching the (many) synced ones.
CREATE INDEX IF NOT EXISTS documents_status_date_id
    ON sync.documents (status, source_date DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_events_status_received_id
    ON sync.webhook_events (status, received_at DESC, id DESC);

-- Search by part of a number ("JKT01-1092" finds #JKT01-1092 and SI/JKT01-1092): trigram indexes
-- when the server has pg_trgm (PostgreSQL's contrib, present in the official images and Debian's
-- packages) and we may create it; otherwise the search still works, by scanning.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm not available (%): number search scans the table', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS documents_search_trgm ON sync.documents USING gin ('
             || '(coalesce(source_number, '''') || '' '' || coalesce(target_number, '''') || '' '' || coalesce(source_id, ''''))'
             || ' gin_trgm_ops)';
        EXECUTE 'CREATE INDEX IF NOT EXISTS webhook_events_search_trgm ON sync.webhook_events USING gin ('
             || '(coalesce(accurate_number, '''') || '' '' || coalesce(iseller_reference, '''') || '' '' || coalesce(uuid, ''''))'
             || ' gin_trgm_ops)';
    END IF;
END
$$;
