"""A bike's photos: the registrar adds them at registration, the owner may add more, an
officer sees them on the case; what is stored is our own JPEG without EXIF (no GPS), a file
that is not an image is a clear 400, and nobody sees another resident's bike's photos."""

from __future__ import annotations

import io

import psycopg
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from PIL import Image
from scenarios import registration

GPS_IFD = 0x8825


def _phone_photo(width: int = 2400, height: int = 1800) -> bytes:
    """A JPEG as a phone writes it: large, rotated by its orientation tag, with a GPS fix."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    exif[GPS_IFD] = {1: "N", 2: (30.0, 15.0, 0.0), 3: "E", 4: (120.0, 10.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_photos_are_stored_without_exif_and_shown_to_whoever_sees_the_bike(
    api_db: str, client: TestClient, headers: dict
) -> None:
    body = registration(7500)
    bike = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert bike.status_code == 201, bike.text
    bike_id = bike.json()["bike_id"]
    upload = client.post(
        f"/api/v1/bikes/{bike_id}/photos",
        files={"photo": ("IMG_0001.jpg", _phone_photo(), "image/jpeg")},
        data={"caption": "left side, red basket"},
        headers=headers["registrar"],
    )
    assert upload.status_code == 201, upload.text
    meta = upload.json()
    # The orientation tag was applied (portrait), then the longer side cut to 1600 px.
    assert (meta["width"], meta["height"]) == (1200, 1600)

    listed = client.get(f"/api/v1/bikes/{bike_id}/photos", headers=headers["officer"])
    assert listed.status_code == 200, listed.text
    assert [p["caption"] for p in listed.json()] == ["left side, red basket"]
    full = client.get(meta["url"], headers=headers["officer"])
    thumb = client.get(meta["thumbnail_url"], headers=headers["officer"])
    assert full.headers["content-type"] == "image/jpeg"
    stored, small = Image.open(io.BytesIO(full.content)), Image.open(io.BytesIO(thumb.content))
    assert stored.size == (1200, 1600)
    assert max(small.size) == 320
    assert not stored.getexif(), "no EXIF (and so no GPS position) is kept"
    assert b"PhoneMaker" not in full.content

    with psycopg.connect(api_db) as conn:
        audited = conn.execute(
            "SELECT actor, bike_id FROM audit_log WHERE action = 'bike.photo.add'"
        ).fetchall()
    assert audited == [("the-registrar", bike_id)]


def test_not_an_image_is_a_400_and_another_residents_bike_is_not_found(
    api_db: str, client: TestClient, headers: dict
) -> None:
    body = registration(7501)
    bike_id = client.post("/api/v1/bikes", json=body, headers=headers["registrar"]).json()[
        "bike_id"
    ]
    bad = client.post(
        f"/api/v1/bikes/{bike_id}/photos",
        files={"photo": ("notes.jpg", b"%PDF-1.4 not an image", "image/jpeg")},
        headers=headers["registrar"],
    )
    assert bad.status_code == 400
    assert "not a readable JPEG, PNG or WebP image" in bad.json()["detail"]

    add_user(api_db, "someone-else", "resident")
    stranger = login(client, "someone-else")
    for answer in (
        client.get(f"/api/v1/bikes/{bike_id}/photos", headers=stranger),
        client.post(
            f"/api/v1/bikes/{bike_id}/photos",
            files={"photo": ("x.jpg", _phone_photo(40, 30), "image/jpeg")},
            headers=stranger,
        ),
    ):
        assert answer.status_code == 404, answer.text
