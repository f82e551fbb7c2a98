"""LLRP parameter lists: split a run of TV and TLV parameters (pure, no I/O)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.base import PayloadError


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter as found in a message body: TV or TLV, its type, value and raw bytes."""

    tv: bool
    type: int
    value: bytes
    raw: bytes


def parse_params(data: bytes) -> list[Param]:
    """Split a run of TV and TLV parameters; raise :class:`PayloadError` if it does not parse.

    TLV lengths must cover their header and stay inside ``data``. A TV type not in the
    specification cannot be skipped (its length is unknown), so it is an error too.
    """
    out: list[Param] = []
    i = 0
    while i < len(data):
        first = data[i]
        if first & 0x80:
            ptype = first & 0x7F
            size = s.TV_LENGTHS.get(ptype)
            if size is None:
                raise PayloadError(f"unknown TV parameter type {ptype} at byte {i}")
            end = i + 1 + size
            if end > len(data):
                raise PayloadError(f"TV parameter {ptype} cut short at byte {i}")
            out.append(Param(True, ptype, data[i + 1 : end], data[i:end]))
        else:
            if i + s.TLV_HEADER_LEN > len(data):
                raise PayloadError(f"TLV parameter header cut short at byte {i}")
            ptype_raw, length = struct.unpack_from(">HH", data, i)
            ptype = ptype_raw & 0x3FF
            end = i + length
            if length < s.TLV_HEADER_LEN or end > len(data):
                raise PayloadError(
                    f"TLV parameter {ptype} at byte {i} has length {length}, "
                    f"outside 4..{len(data) - i}"
                )
            out.append(Param(False, ptype, data[i + s.TLV_HEADER_LEN : end], data[i:end]))
        i = end
    return out


__all__ = ["Param", "parse_params"]
