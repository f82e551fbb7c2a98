-- Least-privilege database roles. Migrations run as the schema owner; the services log in as
-- members of these NOLOGIN group roles (docs/deployment.md, "Database roles"):
--
--   tagtrail_engine    stores reads, passages, alerts and quarantined messages; creates and
--                      expires partitions through SECURITY DEFINER functions; records reader
--                      heartbeats. Nothing of owners or accounts.
--   tagtrail_api       everything the API's query modules read and write: the registry, cases,
--                      accounts, the audit log (append and read only); reads, passages and
--                      held reads read only. The only role that may read owners.id_number_enc.
--   tagtrail_readonly  auditors and reporting: SELECT, except owners' ID number ciphertext and
--                      hash and accounts' password hashes.
--
-- No role may UPDATE, DELETE or TRUNCATE audit_log (nor own anything, so none can disable its
-- triggers). Who may do what is tested in tests/security/test_db_roles.py.

-- Roles are cluster-wide, but migrations are serialised per database only (the migrator's
-- advisory lock is per database): several databases of one cluster may migrate at once, and
-- the loser of a race to create a role gets unique_violation (or duplicate_object). Either
-- means the role exists, which is all this needs.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tagtrail_engine', 'tagtrail_api', 'tagtrail_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it first
            END;
        END IF;
    END LOOP;
END $$;

-- Only the owner creates objects (PostgreSQL 15 already says so for new clusters; clusters
-- upgraded from older versions still let PUBLIC create in schema public).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO tagtrail_engine, tagtrail_api, tagtrail_readonly;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO tagtrail_engine, tagtrail_api, '
                   'tagtrail_readonly', current_database());
    -- The engine's idempotent COPY goes through temporary staging tables.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO tagtrail_engine', current_database());
END $$;

-- Partition management. Creating a partition of reads or passages needs the parent's owner:
-- the function runs as its owner (the migration's role) with a fixed search_path, and gives
-- each new partition its privileges explicitly (default privileges would otherwise hand the
-- API write access to it). It only ever touches tables whose partition_policy is 'native'.
CREATE OR REPLACE FUNCTION tagtrail_ensure_partitions(tbl text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
    created integer := 0;
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = tbl) IS DISTINCT FROM 'native' THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tagtrail_partitions:' || tbl));
    WHILE day <= last_day LOOP
        part := format('%s_p%s', tbl, to_char(day, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                part, tbl,
                (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            PERFORM tagtrail_partition_privileges(part);
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Rows are reached through the parent, whose privileges apply; a partition itself is read
-- directly only by retention (the engine), and written directly by nobody.
CREATE FUNCTION tagtrail_partition_privileges(part text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, tagtrail_engine, tagtrail_api, tagtrail_readonly',
                   part);
    EXECUTE format('GRANT SELECT ON %I TO tagtrail_engine', part);
END $$;

-- Retention drops a day partition of `tbl` (dropping needs the owner too). Refused unless
-- `part` is a native day partition of `tbl` whose whole day lies in the past: the engine's
-- role can expire old reads, never today's or tomorrow's. Returns false if it is already gone.
CREATE FUNCTION tagtrail_drop_partition(tbl text, part text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date;
BEGIN
    IF (SELECT mode FROM partition_policy WHERE table_name = tbl) IS DISTINCT FROM 'native' THEN
        RAISE EXCEPTION '% is not a natively partitioned table', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF part !~ ('^' || tbl || '_p[0-9]{8}$') THEN
        RAISE EXCEPTION '% is not a day partition of %', part, tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tagtrail_partitions:' || tbl));
    IF to_regclass(part) IS NULL THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                   WHERE inhrelid = to_regclass(part) AND inhparent = to_regclass(tbl)) THEN
        RAISE EXCEPTION '% is not a partition of %', part, tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    day := to_date(right(part, 8), 'YYYYMMDD');
    IF (day + 1)::timestamp AT TIME ZONE 'UTC' > now() THEN
        RAISE EXCEPTION 'partition % is not in the past', part
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION tagtrail_ensure_partitions(text, timestamptz, timestamptz),
    tagtrail_partition_privileges(text), tagtrail_drop_partition(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tagtrail_ensure_partitions(text, timestamptz, timestamptz),
    tagtrail_drop_partition(text, text) TO tagtrail_engine;

-- The engine: exactly the statements of track_engine/pipeline.py, db/writer.py, consumer.py,
-- retention.py and reader_status.py.
GRANT SELECT, INSERT ON reads TO tagtrail_engine;                 -- COPY, recovery on start
GRANT SELECT, INSERT, UPDATE ON passages TO tagtrail_engine;      -- upsert of refolded passages
GRANT SELECT, INSERT ON alerts TO tagtrail_engine;                -- INSERT ... RETURNING alert_id
GRANT INSERT ON quarantine TO tagtrail_engine;
GRANT SELECT ON watches, tag_bindings TO tagtrail_engine;         -- the watch list
GRANT SELECT ON partition_policy, case_holds TO tagtrail_engine;  -- retention
GRANT INSERT ON held_reads TO tagtrail_engine;
GRANT SELECT, UPDATE (last_heard_at) ON readers TO tagtrail_engine;  -- reader heartbeats
GRANT SELECT ON schema_migrations TO tagtrail_engine;             -- "is everything applied?"

-- The API: read and write every table (including those of earlier migrations this file does
-- not name), then take back what it must not do. Never DELETE or TRUNCATE anything.
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO tagtrail_api;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO tagtrail_api;
REVOKE UPDATE ON audit_log FROM tagtrail_api;  -- append and read only
REVOKE INSERT, UPDATE ON reads, passages, held_reads, quarantine, alerts, partition_policy,
    schema_migrations FROM tagtrail_api;      -- evidence and bookkeeping: read only
GRANT UPDATE (acknowledged_by, acknowledged_at) ON alerts TO tagtrail_api;

-- Read only: everything except owners' ID number ciphertext and hash and password hashes
-- (column grants, so that a column added to owners or users later stays hidden).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tagtrail_readonly;
REVOKE SELECT ON owners, users FROM tagtrail_readonly;
DO $$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ') INTO cols FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = 'owners'
      AND column_name NOT IN ('id_number_enc', 'id_number_hash');
    EXECUTE format('GRANT SELECT (%s) ON owners TO tagtrail_readonly', cols);
    SELECT string_agg(quote_ident(column_name), ', ') INTO cols FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = 'users' AND column_name <> 'password_hash';
    EXECUTE format('GRANT SELECT (%s) ON users TO tagtrail_readonly', cols);
END $$;

-- Partitions that exist already (a database upgraded to this migration) get the same
-- privileges as new ones: the grants above covered them as "all tables".
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent IN (to_regclass('reads'), to_regclass('passages')) LOOP
        PERFORM tagtrail_partition_privileges(part);
    END LOOP;
END $$;

-- Tables that later migrations create (as this migration's role) are the API's to read and
-- write and the read-only role's to read; the engine's grants are always explicit. A later
-- migration adding something the API must not write, or a secret column, revokes it there.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO tagtrail_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO tagtrail_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tagtrail_readonly;
