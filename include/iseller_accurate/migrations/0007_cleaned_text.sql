-- What the sync cleaned out of a document's source text before storing or posting it (a NUL or
-- other control character in a product name, ...), so an operator can see that the posted text
-- differs from iSeller's. NULL: nothing was cleaned.
ALTER TABLE sync.documents ADD COLUMN IF NOT EXISTS cleaned text;
