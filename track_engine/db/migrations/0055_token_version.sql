-- Bearer tokens carry the account's token_version (claim "ver"); a token whose version is not
-- the account's is refused. A password change or reset bumps it, so every token issued before
-- it stops working at once (they are re-checked against the account on every request).
-- tagtrail_readonly keeps its column-by-column grants of migration 0040: this column stays
-- hidden from it (it tells nothing an auditor needs).
ALTER TABLE users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 0;
