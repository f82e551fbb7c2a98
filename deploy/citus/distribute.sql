-- Distribute TagTrail's schema over a Citus cluster, by tag (docs/deployment.md, "Citus").
--
-- Run once, as the schema owner, on the coordinator, right after the first
-- `tagtrail db migrate` against it (the tables must exist and be empty or small):
--
--     psql "$TAGTRAIL_DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/citus/distribute.sql
--
-- Later migrations run against the coordinator as usual; Citus propagates their DDL.
--
-- What goes where:
--   * distributed by tag_id, all co-located with `reads` (one tag's reads, passages and held
--     reads live on the same worker, so a route, a fold or a retention copy is one worker's
--     work): every table whose rows grow with the fleet's traffic. Citus needs the
--     distribution column in every primary key and unique index of such a table;
--   * reference tables (a full copy on every worker, joined locally): the registry and
--     everything else, which grows with bikes, cases and users, not with reads.
-- tests/integration/test_scaleout_schema.py checks this file against the migrated schema:
-- every table is listed exactly once, every distributed table has tag_id in its primary key
-- and in every unique or exclusion index, and reference tables come after the tables their
-- foreign keys point to. A migration that adds a table must add it here too.
--
-- Not supported together with TimescaleDB in one database (use native partitions: migration
-- 0003 falls back to them when timescaledb is not preloaded). The engines' alert/passage
-- NOTIFY triggers (migration 0035) fire on the workers, where nobody LISTENs: the API's live
-- streams fall back to their poll interval on Citus (docs/deployment.md).

BEGIN;

-- Shards per distributed table: several per worker core, so workers can be added later and
-- shards moved to them (citus_rebalance_start) without re-sharding.
SET LOCAL citus.shard_count = 64;

-- Reference tables, each after the tables its foreign keys point to.
SELECT create_reference_table('schema_migrations');
SELECT create_reference_table('partition_policy');
SELECT create_reference_table('road_networks');
SELECT create_reference_table('road_nodes');
SELECT create_reference_table('road_edges');
SELECT create_reference_table('readers');
SELECT create_reference_table('cameras');
SELECT create_reference_table('owners');
SELECT create_reference_table('bikes');
SELECT create_reference_table('plates');
SELECT create_reference_table('tags');
SELECT create_reference_table('tag_bindings');
SELECT create_reference_table('users');
SELECT create_reference_table('tagging_events');
SELECT create_reference_table('event_bookings');
SELECT create_reference_table('thefts');
SELECT create_reference_table('watches');
SELECT create_reference_table('case_holds');
-- Alerts grow with open watches (one row per watched tag's visit to a reader), not with the
-- fleet, and the API pages them by a global alert_id cursor: a reference table. If they ever
-- reach millions a day, distribute them by tag_id after a migration that puts tag_id into
-- their primary key and unique constraint and pages by (raised_at, alert_id).
SELECT create_reference_table('alerts');
-- Written by the API at lookup rates (an officer's click, a registration): replicated writes
-- are cheap at that rate, and the append-only triggers of migration 0002 stay in force.
SELECT create_reference_table('audit_log');
SELECT create_reference_table('registration_flags');
-- Notices (migration 0095): few, written at alert rates. Whether its queueing triggers on
-- alerts and registration_flags fire on a Citus cluster as on one node has not been tested.
SELECT create_reference_table('notice_subscriptions');
SELECT create_reference_table('notices');
SELECT create_reference_table('notice_attempts');
SELECT create_reference_table('quarantine');

-- Distributed by tag, co-located.
SELECT create_distributed_table('reads', 'tag_id');
SELECT create_distributed_table('passages', 'tag_id', colocate_with => 'reads');
SELECT create_distributed_table('held_reads', 'tag_id', colocate_with => 'reads');

COMMIT;
