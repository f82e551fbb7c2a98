"""The case sheet as a PDF: who asked, for which case, when it was made, the route drawn on
our own road network (observed and inferred stretches told apart), and every passage with its
time. It is the paper an officer files, so it carries what the printed console page does
without depending on the browser's print dialog.

fpdf2 writes the PDF; text is set in a Unicode font found on the machine (plates and street
names are often CJK: 浙B12345), :mod:`api.tracking.sheet_font`. Readers are named as the
console names them: the id and the streets meeting there ("R2 · 3rd Street × Jiefang Road").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from fpdf import FPDF
from fpdf.fonts import FontFace
from numpy.typing import NDArray

from api.errors import BadRequestError
from api.tracking.exports import kind_runs
from api.tracking.sheet_font import sheet_font

MEDIA_TYPE = "application/pdf"

# Stroke colour (RGB), width (mm) and dash (mm, 0 = solid) per kind of stretch; the same
# meaning as the console's legend and the KML styles.
STRETCH_STYLES: dict[str, tuple[tuple[int, int, int], float, float]] = {
    "observed": ((30, 122, 30), 0.9, 0.0),
    "inferred": ((255, 128, 0), 0.6, 1.2),
    "stop": ((31, 95, 180), 0.8, 0.0),
    "gap": ((128, 128, 128), 0.4, 0.8),
}
_FALLBACK_KIND = "inferred"

PAGE_W_MM = 210.0
MARGIN_MM = 12.0
MAP_H_MM = 120.0
ALTERNATIVE_COLOUR = (11, 61, 145)  # the console's alternative ways
SURE = 0.95  # below this a stretch's way is listed as uncertain (as in the console)
MAX_ROAD_EDGES = 20_000  # context roads drawn at most (the densest city centres)


@dataclass(frozen=True)
class SheetHeader:
    """Who made the sheet, for what, and in which time zone its times are written."""

    plate: str
    case_number: str | None
    reason: str
    officer: str
    generated_at: datetime
    zone: ZoneInfo


@dataclass(frozen=True)
class RoadContext:
    """Road segments to draw under the route: node positions and edge end points."""

    node_lonlat: NDArray[np.float64]
    edge_src: NDArray[np.int32]
    edge_dst: NDArray[np.int32]


def sheet_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (the officer's browser zone); a 400 naming it if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequestError(
            f"unknown time zone {name!r}: give an IANA name such as Asia/Shanghai"
        ) from exc


def reader_label(reader_id: object, addresses: Mapping[str, str]) -> str:
    """A reader named as the console names it (``reader-names.js``): its id and, where the
    streets meeting there have names, its address ("R2 · 3rd Street × Jiefang Road")."""
    rid = str(reader_id or "")
    address = addresses.get(rid, "")
    return f"{rid} · {address}" if address else rid


def _local(iso: str | None, zone: ZoneInfo) -> str:
    if not iso:
        return "—"
    return (
        datetime.fromisoformat(iso.replace("Z", "+00:00"))
        .astimezone(zone)
        .strftime("%Y-%m-%d %H:%M:%S")
    )


class _Projection:
    """Lon/lat to page millimetres: equirectangular at the route's latitude, fitted into the
    map box with equal scale on both axes (north up)."""

    def __init__(self, lonlat: NDArray[np.float64], box: tuple[float, float, float, float]):
        x0, y0, w, h = box
        lon_min, lat_min = lonlat.min(axis=0)
        lon_max, lat_max = lonlat.max(axis=0)
        self.kx = math.cos(math.radians((lat_min + lat_max) / 2))
        span_x = max((lon_max - lon_min) * self.kx, 1e-6)
        span_y = max(lat_max - lat_min, 1e-6)
        pad = 0.08
        self.scale: float = min(w / (span_x * (1 + 2 * pad)), h / (span_y * (1 + 2 * pad)))
        self.cx = (lon_min + lon_max) / 2
        self.cy = (lat_min + lat_max) / 2
        self.ox = x0 + w / 2
        self.oy = y0 + h / 2
        self.box = box

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.ox + (lon - self.cx) * self.kx * self.scale,
            self.oy - (lat - self.cy) * self.scale,
        )

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        x0, y0, w, h = self.box
        lon0 = self.cx + (x0 - self.ox) / (self.kx * self.scale)
        lon1 = self.cx + (x0 + w - self.ox) / (self.kx * self.scale)
        lat1 = self.cy + (self.oy - y0) / self.scale
        lat0 = self.cy + (self.oy - y0 - h) / self.scale
        return lon0, lat0, lon1, lat1

    def metres_per_mm(self) -> float:
        return float(111_320.0 / self.scale)


def _stretches(coords: list[list[float]], kinds: list[str]) -> list[tuple[str, list[Any]]]:
    """Runs of route points of one kind (an unknown kind drawn as the fallback's)."""
    return kind_runs(coords, [k if k in STRETCH_STYLES else _FALLBACK_KIND for k in kinds])


class _Sheet(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("sheet", size=7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, f"{self.footer_text}  ·  {self.page_no()}/{{nb}}", align="C")


def _header(pdf: _Sheet, header: SheetHeader, props: dict[str, Any]) -> None:
    pdf.set_font("sheet", size=16)
    pdf.cell(0, 9, f"TagTrail case sheet — {header.plate}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sheet", size=9)
    zone = header.zone.key
    lines = [
        ("Case number", header.case_number or "— (no case number)"),
        ("Reason", header.reason or "—"),
        ("Officer", header.officer),
        ("Generated", f"{header.generated_at.astimezone(header.zone):%Y-%m-%d %H:%M:%S} {zone}"),
        ("Window", f"{_local(props.get('since'), header.zone)} – "
                   f"{_local(props.get('until'), header.zone) if props.get('until') else 'now'}"),
        ("Passages", str(len(props.get("passages") or []))),
    ]  # fmt: skip
    for label, value in lines:
        pdf.set_text_color(90, 90, 90)
        pdf.cell(28, 5, label)
        pdf.set_text_color(0, 0, 0)
        pdf.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")


def _draw_roads(pdf: _Sheet, proj: _Projection, roads: RoadContext | None) -> None:
    if roads is None or len(roads.edge_src) == 0:
        return
    lon0, lat0, lon1, lat1 = proj.lonlat_bounds()
    ll = roads.node_lonlat
    inside = (ll[:, 0] >= lon0) & (ll[:, 0] <= lon1) & (ll[:, 1] >= lat0) & (ll[:, 1] <= lat1)
    keep = np.flatnonzero(inside[roads.edge_src] & inside[roads.edge_dst])[:MAX_ROAD_EDGES]
    pdf.set_draw_color(205, 205, 205)
    pdf.set_line_width(0.2)
    for src, dst in zip(roads.edge_src[keep], roads.edge_dst[keep], strict=True):
        x1, y1 = proj.xy(*ll[src])
        x2, y2 = proj.xy(*ll[dst])
        pdf.line(x1, y1, x2, y2)


def _draw_scale_bar(pdf: _Sheet, proj: _Projection) -> None:
    x0, y0, _, h = proj.box
    target_m = proj.metres_per_mm() * 30  # about 30 mm long
    nice = 10 ** math.floor(math.log10(target_m))
    for step in (5, 2, 1):
        if step * nice <= target_m:
            nice *= step
            break
    length_mm = nice / proj.metres_per_mm()
    y = y0 + h - 5
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.5)
    pdf.line(x0 + 4, y, x0 + 4 + length_mm, y)
    pdf.set_font("sheet", size=7)
    pdf.set_xy(x0 + 4, y - 4.5)
    label = f"{nice / 1000:g} km" if nice >= 1000 else f"{nice:g} m"
    pdf.cell(length_mm, 4, f"{label}   ↑ N", align="L")


def _draw_map(pdf: _Sheet, feature: dict[str, Any], roads: RoadContext | None) -> None:
    props = feature["properties"]
    coords = feature["geometry"]["coordinates"]
    passages = [p for p in props.get("passages") or [] if p.get("lon") is not None]
    box = (MARGIN_MM, pdf.get_y() + 3, PAGE_W_MM - 2 * MARGIN_MM, MAP_H_MM)
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.3)
    pdf.rect(*box)
    alternatives = [a for s in props.get("stretches") or [] for a in s.get("alternatives") or []]
    points = [c[:2] for c in coords] + [[p["lon"], p["lat"]] for p in passages]
    points += [c[:2] for a in alternatives for c in a["coordinates"]]
    if not points:
        pdf.set_xy(box[0], box[1] + box[3] / 2)
        pdf.cell(box[2], 5, "No position in this window.", align="C")
        pdf.set_y(box[1] + box[3] + 3)
        return
    proj = _Projection(np.asarray(points, dtype=np.float64), box)
    _draw_roads(pdf, proj, roads)
    _draw_alternatives(pdf, proj, alternatives)
    kinds = props.get("kinds") or ["observed"] * len(coords)
    for kind, run in _stretches(coords, kinds):
        colour, width, dash = STRETCH_STYLES[kind]
        pdf.set_draw_color(*colour)
        pdf.set_line_width(width)
        pdf.set_dash_pattern(dash=dash, gap=dash)
        pdf.polyline([proj.xy(lon, lat) for lon, lat, *_ in run])
    pdf.set_dash_pattern()
    pdf.set_font("sheet", size=6)
    for number, passage in enumerate(passages, start=1):
        x, y = proj.xy(passage["lon"], passage["lat"])
        pdf.set_fill_color(30, 122, 30)
        pdf.set_draw_color(255, 255, 255)
        pdf.set_line_width(0.2)
        pdf.circle(x=x, y=y, radius=1.3, style="FD")
        pdf.set_text_color(0, 0, 0)
        pdf.text(x + 1.6, y - 0.8, str(number))
    _draw_scale_bar(pdf, proj)
    pdf.set_y(box[1] + box[3] + 3)


def _draw_alternatives(pdf: _Sheet, proj: _Projection, alternatives: list[dict[str, Any]]) -> None:
    """The other plausible ways (docs/console.md), thin dotted blue under the route."""
    pdf.set_draw_color(*ALTERNATIVE_COLOUR)
    pdf.set_line_width(0.35)
    pdf.set_dash_pattern(dash=0.5, gap=1.2)
    for alt in alternatives:
        pdf.polyline([proj.xy(lon, lat) for lon, lat, *_ in alt["coordinates"]])
    pdf.set_dash_pattern()


def _stretch_notes(
    pdf: _Sheet, stretches: list[dict[str, Any]], addresses: Mapping[str, str]
) -> None:
    """One line per stretch the engine is less than ``SURE`` of: how sure, and the others."""
    unsure = [s for s in stretches if s.get("probability") is not None and s["probability"] < SURE]
    if not unsure:
        return
    pdf.set_font("sheet", size=8)
    pdf.cell(
        0,
        5,
        "Stretches whose way is uncertain (dotted blue: other possible ways)",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for s in unsure:
        others = ", ".join(f"{a['probability']:.0%}" for a in s.get("alternatives") or [])
        pdf.cell(
            0,
            4,
            f"{reader_label(s['from_reader'], addresses)} → "
            f"{reader_label(s['to_reader'], addresses)}: drawn way {s['probability']:.0%} sure"
            + (f"; other ways {others}" if others else ""),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)


def _legend(pdf: _Sheet) -> None:
    pdf.set_font("sheet", size=7)
    y = pdf.get_y()
    x = MARGIN_MM
    for kind, (colour, width, dash) in STRETCH_STYLES.items():
        pdf.set_draw_color(*colour)
        pdf.set_line_width(width)
        pdf.set_dash_pattern(dash=dash, gap=dash)
        pdf.line(x, y + 2, x + 8, y + 2)
        pdf.set_dash_pattern()
        pdf.set_xy(x + 9, y)
        pdf.cell(24, 4, kind)
        x += 34
    pdf.set_xy(MARGIN_MM, y + 6)


def _passage_table(
    pdf: _Sheet, passages: list[dict[str, Any]], zone: ZoneInfo, addresses: Mapping[str, str]
) -> None:
    pdf.set_font("sheet", size=8)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.2)
    pdf.set_text_color(0, 0, 0)
    with pdf.table(
        cell_fill_mode="ROWS",
        cell_fill_color=(245, 245, 245),
        col_widths=(8, 36, 82, 12, 48),  # the reader's address is the longest
        text_align=("RIGHT", "LEFT", "LEFT", "RIGHT", "LEFT"),
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="", fill_color=(230, 230, 230)),
        line_height=4.5,
    ) as table:
        table.row(["#", f"Time ({zone.key})", "Reader", "Reads", "Position (lat, lon)"])
        for number, p in enumerate(passages, start=1):
            where = f"{p['lat']:.6f}, {p['lon']:.6f}" if p.get("lat") is not None else "—"
            table.row(
                [
                    str(number),
                    _local(p.get("closest_at"), zone),
                    reader_label(p.get("reader_id"), addresses),
                    str(p.get("read_count", "")),
                    where,
                ]
            )


def to_pdf(
    feature: dict[str, Any],
    header: SheetHeader,
    roads: RoadContext | None = None,
    addresses: Mapping[str, str] | None = None,
) -> bytes:
    """The case sheet of ``feature`` (a route of :func:`api.tracking.service.route_for_plate`),
    its readers named by ``addresses`` (reader id -> "Street × Street") where given."""
    addresses = addresses or {}
    pdf = _Sheet(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.add_font("sheet", fname=str(sheet_font()))
    case = header.case_number or header.reason
    pdf.footer_text = (
        f"TagTrail · {header.plate} · {case} · generated "
        f"{header.generated_at.astimezone(header.zone):%Y-%m-%d %H:%M:%S} {header.zone.key}"
        f" by {header.officer}"
    )
    pdf.set_title(f"TagTrail case sheet {header.plate}")
    pdf.set_author(header.officer)
    pdf.set_creator("TagTrail")
    pdf.add_page()
    props = feature["properties"]
    _header(pdf, header, props)
    _draw_map(pdf, feature, roads)
    _legend(pdf)
    _stretch_notes(pdf, props.get("stretches") or [], addresses)
    _passage_table(pdf, [p for p in props.get("passages") or []], header.zone, addresses)
    return bytes(pdf.output())
