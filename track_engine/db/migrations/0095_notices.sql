-- Notices: alerts and stolen-frame flags reach people by e-mail, signed webhook or a chat/SMS
-- service (apprise), not only an open console tab. A transactional outbox: the rows are made by
-- triggers in the transaction that stores the alert or flag, so a notice is never lost between
-- "alert stored" and "notice queued"; the sender (api/notifications/sender.py) delivers them
-- with retries and records every attempt.

-- What a user wants to hear of, where. Removed subscriptions are kept (removed_at), never
-- deleted: the API deletes nothing, and old notices still name them.
CREATE TABLE notice_subscriptions (
    subscription_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook', 'apprise')),
    address          text NOT NULL CHECK (length(address) BETWEEN 3 AND 2000),
    kinds            text[] NOT NULL
                     CHECK (cardinality(kinds) > 0
                            AND kinds <@ ARRAY['bike_moved', 'stolen_seen', 'stolen_frame']),
    webhook_secret   text,  -- HMAC-SHA256 key of a webhook subscription's signatures
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    removed_at       timestamptz,
    CHECK ((channel = 'webhook') = (webhook_secret IS NOT NULL))
);
CREATE INDEX notice_subscriptions_user ON notice_subscriptions (user_id)
    WHERE removed_at IS NULL;

-- One notice per subscription per alert (or flag). Carries no location: the sender writes the
-- text at delivery time from the alert's kind, bike and case, and a link to the console.
CREATE TABLE notices (
    notice_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    kind             text NOT NULL CHECK (kind IN ('bike_moved', 'stolen_seen', 'stolen_frame')),
    alert_id         bigint,  -- an alert's id; no foreign key: alerts are keyed (tag_id, alert_id) since 0080 and distributed by tag on Citus
    flag_id          bigint REFERENCES registration_flags,
    bike_id          bigint NOT NULL REFERENCES bikes,
    user_id          bigint NOT NULL REFERENCES users,
    subscription_id  bigint NOT NULL REFERENCES notice_subscriptions,
    channel          text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    sent_at          timestamptz,
    CHECK ((alert_id IS NULL) <> (flag_id IS NULL)),
    UNIQUE (subscription_id, alert_id),
    UNIQUE (subscription_id, flag_id)
);
CREATE INDEX notices_due ON notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notices_user ON notices (user_id, notice_id DESC);
CREATE INDEX notices_failed ON notices (notice_id DESC) WHERE status = 'failed';

-- Every delivery attempt: when, how long, what came of it.
CREATE TABLE notice_attempts (
    notice_id    bigint NOT NULL REFERENCES notices,
    attempt      integer NOT NULL CHECK (attempt >= 1),
    started_at   timestamptz NOT NULL,
    duration_ms  double precision NOT NULL CHECK (duration_ms >= 0),
    outcome      text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    error        text NOT NULL DEFAULT '',
    PRIMARY KEY (notice_id, attempt)
);

-- Fan-out. SECURITY DEFINER: the engine's role stores alerts but may read neither accounts
-- nor subscriptions; the function (owned by the migrating role) does, with a fixed
-- search_path. Who may hear of what is decided here, the same rules as the API's:
--   bike_moved   an "alert me" (armed) watch's alert, to residents owning the bike now and
--                since before the read (never a previous owner: migration 0065's rule);
--   stolen_seen  a stolen bike's (theft watch's) alert, to the duty desk (admin, officer);
--   stolen_frame a registration matching a stolen bike's frame/motor, to the duty desk.
CREATE FUNCTION tagtrail_notices_for_alert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w watches%ROWTYPE;
    queued integer;
BEGIN
    SELECT * INTO w FROM watches WHERE watch_id = NEW.watch_id;
    IF w.kind = 'armed' THEN
        INSERT INTO notices (kind, alert_id, bike_id, user_id, subscription_id, channel)
        SELECT 'bike_moved', NEW.alert_id, b.bike_id, u.user_id, s.subscription_id, s.channel
        FROM bikes b
        JOIN users u ON u.owner_id = b.owner_id
        JOIN notice_subscriptions s ON s.user_id = u.user_id
        WHERE b.bike_id = w.bike_id AND u.role = 'resident' AND NOT u.disabled
          AND s.enabled AND s.removed_at IS NULL AND 'bike_moved' = ANY (s.kinds)
          AND NEW.read_at >= coalesce(b.owner_since, b.registered_at)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO notices (kind, alert_id, bike_id, user_id, subscription_id, channel)
        SELECT 'stolen_seen', NEW.alert_id, w.bike_id, u.user_id, s.subscription_id, s.channel
        FROM notice_subscriptions s
        JOIN users u ON u.user_id = s.user_id
        WHERE u.role IN ('admin', 'officer') AND NOT u.disabled
          AND s.enabled AND s.removed_at IS NULL AND 'stolen_seen' = ANY (s.kinds)
        ON CONFLICT DO NOTHING;
    END IF;
    GET DIAGNOSTICS queued = ROW_COUNT;
    IF queued > 0 THEN
        PERFORM pg_notify('tagtrail_notices', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_queue_notices
    AFTER INSERT ON alerts
    FOR EACH ROW EXECUTE FUNCTION tagtrail_notices_for_alert();

CREATE FUNCTION tagtrail_notices_for_flag() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    queued integer;
BEGIN
    INSERT INTO notices (kind, flag_id, bike_id, user_id, subscription_id, channel)
    SELECT 'stolen_frame', NEW.flag_id, NEW.stolen_bike_id, u.user_id, s.subscription_id,
           s.channel
    FROM notice_subscriptions s
    JOIN users u ON u.user_id = s.user_id
    WHERE u.role IN ('admin', 'officer') AND NOT u.disabled
      AND s.enabled AND s.removed_at IS NULL AND 'stolen_frame' = ANY (s.kinds)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS queued = ROW_COUNT;
    IF queued > 0 THEN
        PERFORM pg_notify('tagtrail_notices', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER registration_flags_queue_notices
    AFTER INSERT ON registration_flags
    FOR EACH ROW EXECUTE FUNCTION tagtrail_notices_for_flag();

REVOKE ALL ON FUNCTION tagtrail_notices_for_alert(), tagtrail_notices_for_flag() FROM PUBLIC;

-- The API owns these tables (default privileges of 0040 give it SELECT, INSERT, UPDATE).
-- Delivery history is evidence: attempts are appended, never changed.
REVOKE UPDATE ON notice_attempts FROM tagtrail_api;
-- Webhook secrets and apprise URLs (which carry service tokens) are not for the read-only role.
REVOKE SELECT ON notice_subscriptions FROM tagtrail_readonly;
GRANT SELECT (subscription_id, user_id, channel, kinds, enabled, created_at, removed_at)
    ON notice_subscriptions TO tagtrail_readonly;
