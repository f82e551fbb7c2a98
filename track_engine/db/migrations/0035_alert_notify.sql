-- Push for the API's live streams: NOTIFY tagtrail_live when an alert, a stolen-match flag or
-- a passage is stored, so that an SSE client hears of it at commit instead of at its next poll.
-- Payloads carry ids only (JSON: {"t": "alert", "id": <alert_id>, "bike": <bike_id>},
-- {"t": "flag", "id": <flag_id>}, {"t": "passage"}); the API reads the rows by cursor.
-- Written to run twice without harm (CREATE OR REPLACE, DROP ... IF EXISTS).

-- Alerts and flags are few (one per watched tag's visit, one per suspect registration):
-- a row trigger each. The alert names its bike so that only that bike's streams wake.
CREATE OR REPLACE FUNCTION tagtrail_live_notify_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tagtrail_live', json_build_object(
        't', 'alert',
        'id', NEW.alert_id,
        'bike', (SELECT w.bike_id FROM watches w WHERE w.watch_id = NEW.watch_id))::text);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alerts_live_notify ON alerts;
CREATE TRIGGER alerts_live_notify
    AFTER INSERT ON alerts
    FOR EACH ROW EXECUTE FUNCTION tagtrail_live_notify_alert();

CREATE OR REPLACE FUNCTION tagtrail_live_notify_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tagtrail_live', json_build_object('t', 'flag', 'id', NEW.flag_id)::text);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS registration_flags_live_notify ON registration_flags;
CREATE TRIGGER registration_flags_live_notify
    AFTER INSERT ON registration_flags
    FOR EACH ROW EXECUTE FUNCTION tagtrail_live_notify_flag();

-- Passages arrive by the hundred thousand on the engine's COPY path: one notification per
-- INSERT/COPY statement, with no transition table (nothing is kept per row, and TimescaleDB
-- hypertables refuse transition tables anyway). Every live bike stream then looks for its own
-- passages by cursor; a statement that stored none only costs them one empty look.
CREATE OR REPLACE FUNCTION tagtrail_live_notify_passages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tagtrail_live', '{"t": "passage"}');
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS passages_live_notify ON passages;
CREATE TRIGGER passages_live_notify
    AFTER INSERT ON passages
    FOR EACH STATEMENT EXECUTE FUNCTION tagtrail_live_notify_passages();
