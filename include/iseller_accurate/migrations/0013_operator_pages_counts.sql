-- The operator pages' totals and status chips from an index alone (issue 13, "pages at size").
-- Every list answer counts its rows (up to 100,000) and the open statuses, both under the user's
-- DAG scope (dag_id) and often the outlet filter. With 1,000,000 ledger rows these counts read the
-- table itself for dag_id and took most of a page's time; with dag_id (and outlet_id) in the index
-- they are index-only scans (bench/bench_pages.py: first page 123 -> 43 ms, outlet filter
-- 161 -> 50 ms, Webhook Log failed 62 -> 25 ms, median at 300,000 rows on a busy 2-core machine).
-- Building them on an existing ledger blocks writes to the two tables for a few seconds per million
-- rows (3.4 s for 300,000 documents and events here); run the upgrade outside business hours.
CREATE INDEX IF NOT EXISTS documents_status_dag_outlet ON sync.documents (status, dag_id, outlet_id);
CREATE INDEX IF NOT EXISTS documents_outlet_dag ON sync.documents (outlet_id, dag_id);
CREATE INDEX IF NOT EXISTS webhook_events_status_dag ON sync.webhook_events (status, dag_id);
