"""Turning an uploaded file into the two JPEGs we keep: the photo (at most 1600 px) and its
thumbnail (320 px). Pillow decodes, the orientation tag is applied, and the result is
written fresh, so no EXIF (a phone's GPS position, its serial number) is ever stored."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from api.errors import BadRequestError

MAX_SIDE_PX = 1600
THUMB_SIDE_PX = 320
MAX_SOURCE_PIXELS = 40_000_000  # a 40 MP phone photo; more is a decompression bomb
FORMATS = ("JPEG", "PNG", "WEBP")


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """The stored forms of one upload."""

    image: bytes
    thumbnail: bytes
    width: int
    height: int


def _jpeg(picture: Image.Image, side: int) -> tuple[bytes, int, int]:
    copy = picture.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), copy.width, copy.height


def prepare_image(data: bytes) -> PreparedImage:
    """The photo and thumbnail of ``data`` (JPEG, PNG or WebP); a 400 naming the problem for
    anything else, a truncated file or an image too large to decode safely."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
            if probe.width * probe.height > MAX_SOURCE_PIXELS:
                raise BadRequestError(
                    f"the image is {probe.width}×{probe.height} px; at most "
                    f"{MAX_SOURCE_PIXELS // 1_000_000} megapixels"
                )
            probe.verify()  # checks the file's structure without decoding it all
        with Image.open(io.BytesIO(data), formats=FORMATS) as source:
            picture = ImageOps.exif_transpose(source).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequestError(f"not a readable JPEG, PNG or WebP image ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise BadRequestError(f"the image is too large to decode safely ({exc})") from exc
    image, width, height = _jpeg(picture, MAX_SIDE_PX)
    thumbnail, _, _ = _jpeg(picture, THUMB_SIDE_PX)
    return PreparedImage(image=image, thumbnail=thumbnail, width=width, height=height)
