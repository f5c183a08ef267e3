-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as the
-- POSTGRES_USER (airflow), which already owns the Airflow metadata database `airflow`.
-- The sync ledger lives in a database of its own (connection `sync_db`), never in Airflow's tables.
CREATE DATABASE sync_db;
