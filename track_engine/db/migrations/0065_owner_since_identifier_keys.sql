-- Privacy after an owner change, and look-alike-proof search keys.
--
-- 1. When the bike's current owner became its owner (NULL: the owner who registered it, since
--    registered_at). A resident sees the alerts of their bike raised since then only, never a
--    previous owner's (track_engine/db/cases.py owner_alerts). For bikes handed over before
--    this migration, the time comes from the audit log's last 'bike.owner_change'.
ALTER TABLE bikes ADD COLUMN owner_since timestamptz;
UPDATE bikes b SET owner_since = c.at
FROM (SELECT bike_id, max(at) AS at FROM audit_log
      WHERE action = 'bike.owner_change' AND bike_id IS NOT NULL GROUP BY bike_id) c
WHERE c.bike_id = b.bike_id;

-- 2. A previous owner's "alert me" watch left armed by an owner change made before this
--    migration is disarmed now, and the audit log says so (an owner change disarms them
--    itself from now on, api/bikes/registration.py).
WITH closed AS (
    UPDATE watches w SET closed_at = now()
    FROM bikes b
    WHERE b.bike_id = w.bike_id AND w.kind = 'armed' AND w.closed_at IS NULL
      AND b.owner_since IS NOT NULL AND w.starts_at < b.owner_since
      AND NOT EXISTS (SELECT 1 FROM users u
                      WHERE u.user_id = w.created_by AND u.owner_id = b.owner_id)
    RETURNING w.watch_id, w.bike_id)
INSERT INTO audit_log (actor, role, action, subject, bike_id, detail)
SELECT 'system:migration-0065', 'system', 'watch.disarm', 'watch:' || watch_id, bike_id,
       '{"why": "owner_change"}'::jsonb
FROM closed;

-- 3. Plate and frame/motor number keys now also drop invisible characters (zero-width space,
--    soft hyphen, ...) and fold look-alike letters of other scripts (Cyrillic М -> M):
--    track_engine/identifiers.py, the one place keys are made. Keys stored before are made
--    again by a Python step that runs right after this file, in its transaction
--    (track_engine/db/rekey.py, called by track_engine/db/migrate.py for version 65).
