"""The Unicode font the PDF case sheet is set in: plates and street names are often CJK
(浙B12345), so a CJK font is looked for first, through fontconfig and then in the usual
Debian places; DejaVu is the last resort. None at all is a 503 naming the package to install.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from api.errors import UnavailableError

# Fonts tried when fontconfig has no answer: the CJK ones first (plates), DejaVu last.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# fpdf2 reads TrueType and OpenType files and TrueType collections (first face).
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def _fontconfig_match() -> str | None:
    """The file fontconfig picks for Chinese sans text, if fontconfig is installed."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        out = subprocess.run(  # fixed arguments, no shell
            [fc_match, "-f", "%{file}", "sans-serif:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out.lower().endswith(_FONT_SUFFIXES) else None


@lru_cache(maxsize=1)
def sheet_font() -> Path:
    """The Unicode font the sheet is set in; UnavailableError (503) naming the fix if none."""
    for candidate in (*FONT_CANDIDATES, _fontconfig_match()):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise UnavailableError(
        "no Unicode font for the PDF case sheet: install fonts-wqy-microhei (Debian) "
        "or fonts-noto-cjk; the printed console page works without it"
    )
