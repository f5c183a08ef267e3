-- Prerequisites across streams (a stock opname waits for the outlet's earlier sales and transfers).

-- An "ordering" prerequisite only fixes the order: a prerequisite deliberately skipped (a voided
-- order) satisfies it. A plain prerequisite is needed for its data (a transfer in needs the number
-- of its transfer out) and is satisfied only once synced.
ALTER TABLE sync.prerequisites ADD COLUMN IF NOT EXISTS ordering_only boolean NOT NULL DEFAULT false;

-- Prerequisites named by their source key that are not in the ledger yet (a sale the sales sync has
-- not read from iSeller). The document waits, blocked with ``label`` as its reason; when the
-- prerequisite is stored, the row moves to sync.prerequisites.
CREATE TABLE IF NOT EXISTS sync.awaited_prerequisites (
    document_id   bigint  NOT NULL REFERENCES sync.documents (id) ON DELETE CASCADE,
    data_type     text    NOT NULL,
    source_id     text    NOT NULL,
    label         text    NOT NULL,  -- how an operator names the missing document, and why it is missing
    ordering_only boolean NOT NULL DEFAULT false,
    PRIMARY KEY (document_id, data_type, source_id)
);
CREATE INDEX IF NOT EXISTS awaited_prerequisites_key ON sync.awaited_prerequisites (data_type, source_id);
