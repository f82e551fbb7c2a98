"""The printable registration slip: one self-contained HTML page (prints on A5)."""

from __future__ import annotations

from html import escape

from api.bikes.schemas import BikeDetailOut

_STYLE = """body{font-family:sans-serif;max-width:36em;margin:2em auto}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3em .5em;
text-align:left}th{width:35%;background:#eee}@media print{button{display:none}}"""


def render_slip(bike: BikeDetailOut) -> str:
    """The slip of a registered bike; owner data masked as everywhere else."""
    current = next((t for t in reversed(bike.tags) if t.valid_to is None), None)
    rows = [
        ("Registration no.", f"TT-{bike.bike_id:08d}"),
        ("Plate", bike.plate or ""),
        ("Tag", current.tag_id if current else "(none)"),
        ("Frame number", bike.frame_number),
        ("Motor number", bike.motor_number),
        ("Brand / model", f"{bike.brand} {bike.model}".strip()),
        ("Colour", bike.colour),
        ("Owner", bike.owner.name),
        ("Phone", bike.owner.phone),
        ("ID number", bike.owner.id_number),
        ("Registered", bike.registered_at.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>TagTrail registration {bike.bike_id}</title><style>{_STYLE}</style></head>"
        f"<body><h1>TagTrail registration slip</h1><table>{body}</table>"
        "<p>Keep this slip. If your bike is stolen, report it in the TagTrail app at once: "
        "the readers start watching for it immediately.</p>"
        "<button onclick='window.print()'>Print</button></body></html>"
    )
