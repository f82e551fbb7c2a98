"""What an integrator meets first: the interactive docs (offline), the OpenAPI document's
error answers, request bodies that refuse unknown fields, and KML that keeps observed apart
from inferred."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from urllib.parse import urljoin
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from scenarios import registration

from api.tracking.exports import to_kml

KML = "{http://www.opengis.net/kml/2.2}"
# Every location lookup: route, exports, cameras, last seen, next readers, companions, live.
LOCATION_LOOKUPS = [
    ("/api/v1/routes/{plate}", "get"),
    ("/api/v1/routes/{plate}/export", "get"),
    ("/api/v1/routes/{plate}/cameras", "get"),
    ("/api/v1/bikes/{bike_id}/last-seen", "get"),
    ("/api/v1/bikes/{bike_id}/next-readers", "get"),
    ("/api/v1/thefts/{theft_id}/companions", "get"),
    ("/api/v1/live/bikes/{bike_id}", "get"),
    ("/api/v1/live/cases/{case_number}", "get"),
]


class _Assets(HTMLParser):
    """The URLs a page loads: script and img src, link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_every_asset_from_the_app_itself(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "the page names an outside URL (a CDN?)"
    parser = _Assets()
    parser.feed(html)
    scripts = [u for u in parser.urls if u.endswith(".js")]
    assert scripts, "the page loads no script: nothing would render"
    for url in parser.urls:
        asset = client.get(urljoin(f"http://testserver{page}", url))
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, f"{url} is nearly empty"
    if page == "/docs":  # Swagger UI's default validator badge would ask swagger.io
        assert '"validatorUrl": null' in html
    # The page's own document: the OpenAPI JSON it points at answers too.
    assert client.get("/openapi.json").status_code == 200


def test_location_lookups_declare_400_403_404_422_as_problem_json(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in LOCATION_LOOKUPS:
        responses = paths[path][method]["responses"]
        for code in ("400", "403", "404", "422"):
            assert code in responses, f"{method.upper()} {path} does not declare {code}"
            assert "application/problem+json" in responses[code]["content"], (path, code)
            assert responses[code]["description"] != "Problem", (path, code)


def test_unknown_body_field_is_refused_with_a_problem_naming_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = {"bike_id": 1, "stolen_at": "2026-11-29T05:40:00Z", "case_numbr": "HZ-1"}
    response = client.post("/api/v1/thefts", json=body, headers=headers["officer"])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "case_numbr: unknown field, not part of this request"
    assert [e["type"] for e in problem["errors"]] == ["extra_forbidden"]


def test_nested_object_is_named_as_unknown_before_the_fields_it_hides(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    # The theft's fields wrapped in an object: it used to answer only "bike_id: Field required".
    body = {"theft": {"bike_id": 1, "stolen_at": "2026-11-29T05:40:00Z"}}
    response = client.post("/api/v1/thefts", json=body, headers=headers["resident"])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("theft: unknown field, not part of this request; "), detail
    assert "bike_id: Field required" in detail


def test_unknown_nested_field_in_registration_owner_is_refused(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = registration(7100)
    body["owner"] = {**body["owner"], "email": "li@example.org"}
    response = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "owner.email: unknown field, not part of this request"


def test_every_json_request_body_refuses_unknown_fields_in_the_openapi(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    def refs(schema: dict[str, object]) -> list[str]:
        found = [str(schema["$ref"]).rsplit("/", 1)[-1]] if "$ref" in schema else []
        for value in schema.values():
            if isinstance(value, dict):
                found += refs(value)
            elif isinstance(value, list):
                found += [r for v in value if isinstance(v, dict) for r in refs(v)]
        return found

    bodies = [
        name
        for item in document["paths"].values()
        for op in item.values()
        for name in refs(op.get("requestBody", {}).get("content", {}).get("application/json", {}))
    ]
    assert len(bodies) >= 10, bodies
    seen: set[str] = set()
    while bodies:  # the bodies and every object nested in them (the registration's owner)
        name = bodies.pop()
        if name in seen:
            continue
        seen.add(name)
        assert schemas[name].get("additionalProperties") is False, f"{name} ignores unknown fields"
        bodies += refs(schemas[name])


def _feature() -> dict[str, object]:
    kinds = ["observed", "observed", "inferred", "inferred", "gap", "observed", "observed"]
    return {
        "type": "Feature",
        "geometry": {
            "type": "LineString",
            "coordinates": [[120.0 + i * 0.001, 30.0] for i in range(len(kinds))],
        },
        "properties": {
            "plate": "浙B12345",
            "times": [f"2026-11-29T06:00:{i:02d}Z" for i in range(len(kinds))],
            "kinds": kinds,
            "passages": [
                {"reader_id": "R-1", "closest_at": "2026-11-29T06:00:00Z", "lon": 120.0, "lat": 30},
                {
                    "reader_id": "R-2",
                    "closest_at": "2026-11-29T06:00:06Z",
                    "lon": 120.006,
                    "lat": 30,
                },
            ],
        },
    }


def test_kml_styles_observed_and_inferred_stretches_apart() -> None:
    doc = ElementTree.fromstring(to_kml(_feature()).encode())
    styles = {
        s.get("id"): s.findtext(f"{KML}LineStyle/{KML}color") for s in doc.iter(f"{KML}Style")
    }
    lines = [
        (pm.findtext(f"{KML}styleUrl"), pm.findtext(f"{KML}LineString/{KML}coordinates"))
        for pm in doc.iter(f"{KML}Placemark")
        if pm.find(f"{KML}LineString") is not None
    ]
    assert [url for url, _ in lines] == ["#observed", "#inferred", "#gap", "#observed"]
    assert styles["observed"] != styles["inferred"], "observed and inferred look the same"
    for url, _ in lines:
        assert url is not None
        assert url[1:] in styles, f"{url} names no style"
    # Stretches join: each ends where the next begins, so the route has no holes.
    ends = [(c or "").split() for _, c in lines]
    for before, after in itertools.pairwise(ends):
        assert before[-1] == after[0]
    passages = [pm for pm in doc.iter(f"{KML}Placemark") if pm.find(f"{KML}Point") is not None]
    assert [pm.findtext(f"{KML}styleUrl") for pm in passages] == ["#passage", "#passage"]
    assert "passage" in styles
