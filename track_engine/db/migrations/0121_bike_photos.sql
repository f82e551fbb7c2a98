-- Photos of a bike, taken at registration or added by its owner, shown on the case so an
-- officer recognises the bike. The API stores only its own re-encoding (JPEG, EXIF and so
-- any GPS position stripped). Evidence-like: the API may add and read, never change or delete.
CREATE TABLE bike_photos (
    photo_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bike_id      bigint NOT NULL REFERENCES bikes,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    uploaded_by  text NOT NULL,
    caption      text NOT NULL DEFAULT '',
    width        integer NOT NULL CHECK (width > 0),
    height       integer NOT NULL CHECK (height > 0),
    image        bytea NOT NULL,  -- JPEG, at most 1600 px on its longer side
    thumbnail    bytea NOT NULL   -- JPEG, at most 320 px
);
CREATE INDEX bike_photos_bike ON bike_photos (bike_id, photo_id);

GRANT SELECT, INSERT ON bike_photos TO tagtrail_api;
GRANT USAGE, SELECT ON SEQUENCE bike_photos_photo_id_seq TO tagtrail_api;
GRANT SELECT ON bike_photos TO tagtrail_readonly;
