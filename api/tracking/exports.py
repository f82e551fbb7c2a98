"""A route (the GeoJSON Feature of :func:`api.tracking.service.route_for_plate`) as GPX, KML
and CSV for case files. Inferred stretches keep their kind, so nobody mistakes a drawn
road path for an observed one."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TypeVar
from xml.sax.saxutils import escape, quoteattr

MEDIA_TYPES = {
    "gpx": "application/gpx+xml",
    "kml": "application/vnd.google-earth.kml+xml",
    "csv": "text/csv; charset=utf-8",
}


def _points(feature: dict[str, Any]) -> list[tuple[float, float, str, str]]:
    props = feature["properties"]
    coords = feature["geometry"]["coordinates"]
    kinds = props.get("kinds") or [""] * len(coords)
    return [
        (float(c[0]), float(c[1]), str(t), str(k))
        for c, t, k in zip(coords, props["times"], kinds, strict=True)
    ]


def to_gpx(feature: dict[str, Any]) -> str:
    """GPX 1.1: passages as waypoints, the route as one track (kind in each point's type)."""
    props = feature["properties"]
    name = escape(f"TagTrail {props.get('plate', '')}")
    wpts = "".join(
        f"<wpt lat={quoteattr(str(p['lat']))} lon={quoteattr(str(p['lon']))}>"
        f"<time>{escape(p['closest_at'])}</time><name>{escape(p['reader_id'])}</name></wpt>"
        for p in props.get("passages", [])
        if p.get("lon") is not None
    )
    trkpts = "".join(
        f"<trkpt lat='{lat}' lon='{lon}'><time>{escape(t)}</time><type>{escape(k)}</type></trkpt>"
        for lon, lat, t, k in _points(feature)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<gpx version='1.1' creator='TagTrail' xmlns='http://www.topografix.com/GPX/1/1'>"
        f"<metadata><name>{name}</name></metadata>{wpts}"
        f"<trk><name>{name}</name><trkseg>{trkpts}</trkseg></trk></gpx>"
    )


# KML colours are aabbggrr. Observed stretches are solid and bold; inferred ones (a drawn
# road path between passages) thinner and half transparent, gaps (timing a guess) faint grey:
# a case file opened in any viewer still tells what was seen from what was drawn.
KML_STYLES = {
    "observed": ("ff1e7a1e", 5.0),
    "inferred": ("990080ff", 3.0),
    "stop": ("ffb45f1f", 4.0),
    "gap": ("66808080", 2.0),
}
_KML_FALLBACK_STYLE = "inferred"


def _kml_styles() -> str:
    lines = "".join(
        f"<Style id='{kind}'><LineStyle><color>{color}</color><width>{width}</width></LineStyle>"
        "</Style>"
        for kind, (color, width) in KML_STYLES.items()
    )
    passage = (
        "<Style id='passage'><IconStyle><color>ff1e7a1e</color><scale>1.1</scale></IconStyle>"
        "<LabelStyle><scale>0.8</scale></LabelStyle></Style>"
    )
    track = (
        "<Style id='track'><LineStyle><color>00000000</color><width>0</width></LineStyle></Style>"
    )
    return lines + passage + track


P = TypeVar("P")


def kind_runs(points: Iterable[P], kinds: Iterable[str]) -> list[tuple[str, list[P]]]:
    """Runs of points of one kind (``kinds``: each point's); each run ends on the next run's
    first point (no holes), and a run of fewer than two points is left out."""
    runs: list[tuple[str, list[P]]] = []
    for point, kind in zip(points, kinds, strict=True):
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(point)
            continue
        if runs:
            runs[-1][1].append(point)
        runs.append((kind, [point]))
    return [(kind, run) for kind, run in runs if len(run) >= 2]


def _stretches(
    points: list[tuple[float, float, str, str]],
) -> list[tuple[str, list[tuple[float, float, str, str]]]]:
    """Runs of points of one KML style (an unknown kind drawn as the fallback's)."""
    return kind_runs(points, [p[3] if p[3] in KML_STYLES else _KML_FALLBACK_STYLE for p in points])


def to_kml(feature: dict[str, Any]) -> str:
    """KML 2.2: a styled line per observed / inferred / stop / gap stretch (kind also in its
    ExtendedData), a gx:Track with a time per point, and a styled placemark per passage."""
    props = feature["properties"]
    points = _points(feature)
    whens = "".join(f"<when>{escape(t)}</when>" for _, _, t, _ in points)
    coords = "".join(f"<gx:coord>{lon} {lat} 0</gx:coord>" for lon, lat, _, _ in points)
    stretches = "".join(
        f"<Placemark><name>{kind}</name><styleUrl>#{kind}</styleUrl>"
        f"<TimeSpan><begin>{escape(run[0][2])}</begin><end>{escape(run[-1][2])}</end></TimeSpan>"
        f"<ExtendedData><Data name='kind'><value>{kind}</value></Data></ExtendedData>"
        "<LineString><tessellate>1</tessellate><coordinates>"
        + " ".join(f"{lon},{lat},0" for lon, lat, _, _ in run)
        + "</coordinates></LineString></Placemark>"
        for kind, run in _stretches(points)
    )
    marks = "".join(
        f"<Placemark><name>{escape(p['reader_id'])}</name><styleUrl>#passage</styleUrl>"
        f"<TimeStamp><when>{escape(p['closest_at'])}</when></TimeStamp>"
        "<ExtendedData><Data name='kind'><value>observed</value></Data></ExtendedData>"
        f"<Point><coordinates>{p['lon']},{p['lat']},0</coordinates></Point></Placemark>"
        for p in props.get("passages", [])
        if p.get("lon") is not None
    )
    name = escape(f"TagTrail {props.get('plate', '')}")
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<kml xmlns='http://www.opengis.net/kml/2.2' xmlns:gx='http://www.google.com/kml/ext/2.2'>"
        f"<Document><name>{name}</name>{_kml_styles()}"
        f"<Folder><name>Route</name>{stretches}</Folder>"
        f"<Placemark><name>{name}</name><styleUrl>#track</styleUrl>"
        f"<gx:Track>{whens}{coords}</gx:Track></Placemark>"
        f"<Folder><name>Passages</name>{marks}</Folder></Document></kml>"
    )


def to_csv(feature: dict[str, Any]) -> str:
    """One row per passage (record=passage) then per route vertex (record=point)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record", "time", "lon", "lat", "kind", "reader_id"])
    for p in feature["properties"].get("passages", []):
        writer.writerow(
            ["passage", p["closest_at"], p.get("lon"), p.get("lat"), "observed", p["reader_id"]]
        )
    for lon, lat, t, k in _points(feature):
        writer.writerow(["point", t, lon, lat, k, ""])
    return out.getvalue()


RENDERERS = {"gpx": to_gpx, "kml": to_kml, "csv": to_csv}
