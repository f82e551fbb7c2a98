-- Messages the engine could not use are kept with their reason, never silently dropped.
CREATE TABLE quarantine (
    quarantine_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    source         text NOT NULL,      -- e.g. 'engine:tagtrail/v1/reads/3'
    reason         text NOT NULL,
    payload        bytea NOT NULL
);
CREATE INDEX quarantine_at ON quarantine (at);
