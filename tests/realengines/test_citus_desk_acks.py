"""An acknowledgement on a real Citus cluster (a coordinator and two workers): the alerts table
is distributed and has no NOTIFY trigger, yet the API's acknowledgement is heard on the
coordinator's live channel (sent after the commit, in a transaction of its own), and the
desks' streams find it by time (migration 0140's index, propagated by Citus).
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import psycopg
import pytest
from citus_setup import distribution, migrate_and_distribute

from api.alerts import service
from api.alerts import store as desk
from api.registry import cases
from api.registry import loaders as registry
from api.users.service import create_user
from tagtrail.bench.engine_scenario import START

pytestmark = [pytest.mark.citus, pytest.mark.slow]

TAG = "E28011A1000000000000AC71"


def test_an_acknowledgement_is_notified_on_citus_without_a_trigger(citus_db: str) -> None:
    migrate_and_distribute(citus_db)
    assert "alerts" in distribution(citus_db)
    with psycopg.connect(citus_db) as conn:
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'alerts'::regclass"
            " AND tgname LIKE '%notify%'"
        ).fetchone()
        assert triggers == (0,)  # distribute.sql dropped alerts_live_notify
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Li Lei", owner_phone="13700000001",
                    owner_id_number="110101199003074258", brand="Yadea", colour="red",
                    frame_number="FRAMEACK71", plate="ZBACK71", tag_id=TAG,
                )
            ],
            registered_at=START,
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        registry.open_theft(
            conn, bike_id=ids["ZBACK71"], stolen_at=START, reported_at=START,
            place="gate", description="", case_number="C-ACK-71",
        )  # fmt: skip
        watch = conn.execute(
            "SELECT watch_id FROM watches WHERE bike_id = %s", (ids["ZBACK71"],)
        ).fetchone()
        assert watch is not None
        alert = conn.execute(
            "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)"
            " VALUES (%s, %s, 'R1', now()) RETURNING alert_id",
            (watch[0], TAG),
        ).fetchone()
        assert alert is not None
        user = create_user(
            conn, username="desk-one", password="correct horse battery", role="officer",
            actor="test", actor_role="test",
        )  # fmt: skip
    alert_id = int(alert[0])

    with psycopg.connect(citus_db, autocommit=True) as listener:
        listener.execute("LISTEN tagtrail_live")
        with psycopg.connect(citus_db) as conn:
            assert desk.acknowledge(conn, "alert", alert_id, user_id=user.user_id)
            service.announce_acknowledged(conn, source="alert", item_id=alert_id)
        heard = [orjson.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert heard == [{"t": "ack", "src": "alert", "id": alert_id}]

    with psycopg.connect(citus_db) as conn:
        acked = cases.acks_after(conn, after=START - timedelta(days=1))
    assert [(a["source"], a["id"], a["acknowledged_by"]) for a in acked] == [
        ("alert", alert_id, "desk-one")
    ]
