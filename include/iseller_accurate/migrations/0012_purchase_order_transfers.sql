-- Accurate purchase orders as pending iSeller transfers (Accurate -> iSeller, issue 11).
-- A purchase order's transfer is created 'pending' (no stock) and later completed with what a receive
-- item brought, or cancelled. Rows of other documents are completed at creation (the default).
ALTER TABLE sync.webhook_transfers ADD COLUMN IF NOT EXISTS iseller_status text NOT NULL DEFAULT 'completed'
    CHECK (iseller_status IN ('pending', 'completed', 'cancelled'));
-- A status change asked of iSeller (UpdateTransfer) and not confirmed yet: written before the call,
-- settled by looking the transfer's status up (GetTransfers) before anything is sent again.
ALTER TABLE sync.webhook_transfers ADD COLUMN IF NOT EXISTS wanted_status text
    CHECK (wanted_status IN ('completed', 'cancelled'));
-- For a purchase order's transfer completed by a receive item: what arrived, and which receive item.
ALTER TABLE sync.webhook_transfers ADD COLUMN IF NOT EXISTS received_lines jsonb;
ALTER TABLE sync.webhook_transfers ADD COLUMN IF NOT EXISTS receipt_id bigint;
ALTER TABLE sync.webhook_transfers ADD COLUMN IF NOT EXISTS receipt_number text;
CREATE INDEX IF NOT EXISTS webhook_transfers_receipt ON sync.webhook_transfers (receipt_id)
    WHERE receipt_id IS NOT NULL;
