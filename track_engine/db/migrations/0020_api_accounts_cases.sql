-- API: encrypted national ID numbers, motor-number search keys, photos, audit context (role,
-- bike, client address), stolen-frame flags raised at registration, and the cameras registry.

-- AES-GCM ciphertext (nonce || ciphertext) of the owner's national ID number; the keyed hash
-- (id_number_hash) stays the lookup key. NULL for owners loaded in bulk without the key.
ALTER TABLE owners ADD COLUMN id_number_enc bytea;

ALTER TABLE bikes ADD COLUMN motor_number_key text NOT NULL DEFAULT '';
ALTER TABLE bikes ADD COLUMN photo_url text NOT NULL DEFAULT '';
CREATE INDEX bikes_motor_number_key ON bikes (motor_number_key) WHERE motor_number_key <> '';
CREATE INDEX bikes_owner ON bikes (owner_id);

-- Who looked, in which role, at which bike, from where. Adding columns does not fire the
-- append-only row triggers; existing rows keep the defaults.
ALTER TABLE audit_log ADD COLUMN role text NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN bike_id bigint;
ALTER TABLE audit_log ADD COLUMN remote_addr text NOT NULL DEFAULT '';
CREATE INDEX audit_log_bike ON audit_log (bike_id, at) WHERE bike_id IS NOT NULL;
CREATE INDEX audit_log_actor ON audit_log (actor, at);

-- A registration whose frame or motor number matches a stolen bike: officers are alerted.
CREATE TABLE registration_flags (
    flag_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at      timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL CHECK (kind IN ('stolen_frame', 'stolen_motor')),
    stolen_bike_id bigint NOT NULL REFERENCES bikes,
    theft_id       bigint NOT NULL REFERENCES thefts,
    presented_by   text NOT NULL,        -- username of the registrar
    event_id       bigint REFERENCES tagging_events,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX registration_flags_at ON registration_flags (raised_at);

CREATE TABLE cameras (
    camera_id              text PRIMARY KEY CHECK (camera_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name                   text NOT NULL DEFAULT '',
    lon                    double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat                    double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    -- e.g. https://nvr.example/cam/{camera_id}/footage?from={start}&to={end}
    footage_url_template   text NOT NULL DEFAULT '',
    installed_at           timestamptz NOT NULL DEFAULT now()
);
