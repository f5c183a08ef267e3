-- iSeller order notifications: each is stored once. The key is the SHA-256 of the notification's
-- Timestamp header and raw body (exactly what its Signature covers), so a replay of the same signed
-- request is recognised and answered without a second row or a second asset event.
ALTER TABLE sync.iseller_notifications ADD COLUMN IF NOT EXISTS notification_key text;
CREATE UNIQUE INDEX IF NOT EXISTS iseller_notifications_key
    ON sync.iseller_notifications (notification_key);
