-- Thefts, cases, watches, alerts, and the append-only audit log.
CREATE TABLE thefts (
    theft_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bike_id       bigint NOT NULL REFERENCES bikes,
    reported_by   bigint REFERENCES users,
    reported_at   timestamptz NOT NULL DEFAULT now(),
    stolen_at     timestamptz NOT NULL,
    place         text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'reported'
                  CHECK (status IN ('reported', 'confirmed', 'recovered', 'closed')),
    case_number   text UNIQUE,
    recovered_at  timestamptz
);
CREATE INDEX thefts_bike ON thefts (bike_id);

-- What the engine watches: a stolen bike (from its theft) or an owner's "alert me if it moves".
CREATE TABLE watches (
    watch_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bike_id     bigint NOT NULL REFERENCES bikes,
    kind        text NOT NULL CHECK (kind IN ('theft', 'armed')),
    theft_id    bigint REFERENCES thefts,
    created_by  bigint REFERENCES users,
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz,
    closed_at   timestamptz
);
CREATE INDEX watches_open ON watches (bike_id) WHERE closed_at IS NULL;

-- Reads of bikes held for a case outlive the raw-read retention period.
CREATE TABLE case_holds (
    theft_id   bigint NOT NULL REFERENCES thefts,
    tag_id     text NOT NULL REFERENCES tags,
    held_from  timestamptz NOT NULL,
    held_to    timestamptz,
    PRIMARY KEY (theft_id, tag_id)
);

CREATE TABLE alerts (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    watch_id     bigint NOT NULL REFERENCES watches,
    tag_id       text NOT NULL,
    reader_id    text NOT NULL,
    read_at      timestamptz NOT NULL,
    acknowledged_by bigint REFERENCES users,
    acknowledged_at timestamptz,
    UNIQUE (watch_id, reader_id, read_at)
);
CREATE INDEX alerts_recent ON alerts (raised_at DESC);

CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,             -- username, or 'system:<component>'
    action       text NOT NULL,             -- e.g. 'route.view', 'bike.register'
    subject      text NOT NULL DEFAULT '',  -- e.g. 'plate:ZB12345'
    reason       text NOT NULL DEFAULT '',
    case_number  text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only: no role, the owner included, may change or remove history through SQL.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
