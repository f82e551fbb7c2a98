-- Registry: roads, readers, owners, bikes, plates, tags and their bindings, users, tagging events.
CREATE EXTENSION IF NOT EXISTS btree_gist;  -- tag bindings must not overlap in time

CREATE TABLE road_networks (
    network_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    source       text NOT NULL,                 -- 'generated:seed=7' or the imported file name
    origin_lat   double precision NOT NULL,     -- origin of the local east/north projection
    origin_lon   double precision NOT NULL,
    active       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX road_networks_one_active ON road_networks (active) WHERE active;

CREATE TABLE road_nodes (
    network_id integer NOT NULL REFERENCES road_networks ON DELETE CASCADE,
    node_id    integer NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    x_m        double precision NOT NULL,
    y_m        double precision NOT NULL,
    kind       text NOT NULL DEFAULT 'junction',
    PRIMARY KEY (network_id, node_id)
);

CREATE TABLE road_edges (
    network_id integer NOT NULL REFERENCES road_networks ON DELETE CASCADE,
    edge_id    integer NOT NULL,
    src        integer NOT NULL,
    dst        integer NOT NULL,
    length_m   double precision NOT NULL CHECK (length_m >= 0),
    road_class text NOT NULL,
    oneway     boolean NOT NULL,
    PRIMARY KEY (network_id, edge_id),
    FOREIGN KEY (network_id, src) REFERENCES road_nodes (network_id, node_id),
    FOREIGN KEY (network_id, dst) REFERENCES road_nodes (network_id, node_id)
);

CREATE TABLE readers (
    reader_id          text PRIMARY KEY,
    name               text NOT NULL DEFAULT '',
    protocol           text NOT NULL,
    lon                double precision NOT NULL,
    lat                double precision NOT NULL,
    x_m                double precision NOT NULL,
    y_m                double precision NOT NULL,
    network_id         integer REFERENCES road_networks ON DELETE SET NULL,
    node_id            integer,                           -- surveyed position snapped to the road
    antennas           smallint NOT NULL DEFAULT 1 CHECK (antennas BETWEEN 1 AND 8),
    antenna_headings   real[] NOT NULL DEFAULT '{}',       -- degrees clockwise from north
    clock_offset_ms    double precision NOT NULL DEFAULT 0, -- reader clock minus true time
    miss_rate          real NOT NULL DEFAULT 0.3 CHECK (miss_rate >= 0 AND miss_rate < 1),
    installed_at       timestamptz NOT NULL DEFAULT now(),
    last_heard_at      timestamptz
);

CREATE TABLE owners (
    owner_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    phone           text NOT NULL,
    id_number_hash  bytea NOT NULL,         -- keyed hash of the national ID; never stored in clear
    id_number_tail  text NOT NULL,          -- last 4 characters, for masked display only
    address         text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX owners_id_number ON owners (id_number_hash);

CREATE TABLE bikes (
    bike_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id         bigint NOT NULL REFERENCES owners,
    brand            text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    colour           text NOT NULL DEFAULT '',
    frame_number     text NOT NULL,
    frame_number_key text NOT NULL,         -- look-alike folded (O->0, I->1) for tolerant search
    motor_number     text NOT NULL DEFAULT '',
    registered_at    timestamptz NOT NULL DEFAULT now(),
    deregistered_at  timestamptz
);
CREATE UNIQUE INDEX bikes_frame_number_key ON bikes (frame_number_key) WHERE deregistered_at IS NULL;

CREATE TABLE plates (
    plate       text NOT NULL,              -- as written on the plate
    plate_key   text NOT NULL,              -- normalized for search
    bike_id     bigint NOT NULL REFERENCES bikes,
    valid       tstzrange NOT NULL DEFAULT tstzrange(now(), NULL),
    EXCLUDE USING gist (plate_key WITH =, valid WITH &&)
);
CREATE INDEX plates_bike ON plates (bike_id);

CREATE TABLE tags (
    tag_id      text PRIMARY KEY CHECK (tag_id ~ '^[0-9A-F]{1,124}$'),
    kind        text NOT NULL DEFAULT 'uhf' CHECK (kind IN ('uhf', 'active')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A bike can be re-tagged: a binding is valid over a time range, and one tag is bound to at most
-- one bike at any instant (a clone shows up as reads, not as a second binding).
CREATE TABLE tag_bindings (
    binding_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag_id      text NOT NULL REFERENCES tags,
    bike_id     bigint NOT NULL REFERENCES bikes,
    valid       tstzrange NOT NULL DEFAULT tstzrange(now(), NULL),
    EXCLUDE USING gist (tag_id WITH =, valid WITH &&),
    EXCLUDE USING gist (bike_id WITH =, valid WITH &&)
);

CREATE TABLE users (
    user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'officer', 'registrar', 'resident', 'auditor')),
    owner_id       bigint REFERENCES owners,          -- a resident sees only this owner's bikes
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tagging_events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    place       text NOT NULL,
    lon         double precision,
    lat         double precision,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    capacity    integer NOT NULL CHECK (capacity > 0)
);

CREATE TABLE event_bookings (
    booking_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES tagging_events,
    user_id        bigint NOT NULL REFERENCES users,
    booked_at      timestamptz NOT NULL DEFAULT now(),
    checked_in_at  timestamptz,
    UNIQUE (event_id, user_id)
);
