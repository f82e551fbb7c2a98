-- Raw reads of tags under a case hold outlive the retention of `reads`: before a read partition
-- is dropped, the reads it holds of held tags (inside the hold's time range) are copied here.
-- Unpartitioned on purpose: it only ever holds the few tags of open cases.
CREATE TABLE held_reads (
    tag_id       text NOT NULL,
    read_at      timestamptz NOT NULL,
    reader_id    text NOT NULL,
    antenna      smallint NOT NULL,
    rssi_dbm     real NOT NULL,
    reader_seq   bigint NOT NULL,
    gateway_id   text NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),   -- when retention moved it here
    PRIMARY KEY (tag_id, read_at, reader_id, antenna)
);

-- Retention asks "is this tag held at this time" for every read of an expiring partition.
CREATE INDEX case_holds_tag ON case_holds (tag_id, held_from);
