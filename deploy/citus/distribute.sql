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
-- 0003 falls back to them when timescaledb is not preloaded).
--
-- Live notifications: a NOTIFY inside a transaction that writes to several workers cannot be
-- two-phase committed ("cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or
-- NOTIFY"), and triggers on distributed tables fire on the workers, where nobody listens. So
-- the NOTIFY triggers of migration 0035 are dropped here; without them the engine and the API
-- send the same notifications themselves, on the coordinator, right after their commit
-- (track_engine/db/live_notify.py). Tested on a coordinator and two workers:
-- tests/realengines/test_citus_engine.py.

BEGIN;

-- Shards per distributed table: several per worker core, so workers can be added later and
-- shards moved to them (citus_rebalance_start) without re-sharding.
SET LOCAL citus.shard_count = 64;

-- The live NOTIFY triggers (see above): the engine and the API notify after commit instead.
DROP TRIGGER IF EXISTS alerts_live_notify ON alerts;
DROP TRIGGER IF EXISTS passages_live_notify ON passages;
DROP TRIGGER IF EXISTS registration_flags_live_notify ON registration_flags;
-- audit_log keeps its append-only triggers (migration 0002): they only raise an error, which
-- is as right on a worker's placement as on the coordinator. Citus copies a table's triggers
-- to its shards only when told that this is safe.
SET LOCAL citus.enable_unsafe_triggers = on;

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
-- Bike photos (migration 0121): written by the API at registration rates.
SELECT create_reference_table('bike_photos');
-- The fleet's way prior (migration 0150): rewritten by the engine's learning job after each
-- miss-rate run (one row per reader pair and way), read whole by the API with the network.
SELECT create_reference_table('way_priors');

-- Distributed by tag, co-located.
SELECT create_distributed_table('reads', 'tag_id');
SELECT create_distributed_table('passages', 'tag_id', colocate_with => 'reads');
SELECT create_distributed_table('held_reads', 'tag_id', colocate_with => 'reads');
-- Alerts by tag as well (their keys include tag_id since migration 0080): the engine's alert
-- INSERT goes to one shard; the API's pages by alert_id are answered through the coordinator.
SELECT create_distributed_table('alerts', 'tag_id', colocate_with => 'reads');
-- Reads of readers not in the registry (migration 0093), held apart by the engine: keyed
-- with the tag like reads, so by tag as well.
SELECT create_distributed_table('unknown_reader_reads', 'tag_id', colocate_with => 'reads');
-- Each tag's own way prior (migration 0160): one row per tag, rewritten by the engine's
-- learning job from that tag's passages (one shard's work) and read by key with its route.
SELECT create_distributed_table('personal_way_priors', 'tag_id', colocate_with => 'reads');

COMMIT;
