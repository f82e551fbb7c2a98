"""What the gateway reads from an LLRP GET_READER_CAPABILITIES_RESPONSE (pure, no I/O).

A reader lists its antenna count and firmware in GeneralDeviceCapabilities (137) and its
transmit power levels as a table of (index, centi-dBm) in RegulatoryCapabilities (143) >
UHFBandCapabilities (144) > TransmitPowerLevelTableEntry (145). ROSpecs name a power by its
index in that table, so a power asked for in dBm has to be looked up here first.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.base import PayloadError
from reader_gateway.protocols.llrp_params import Param, parse_params


@dataclass(frozen=True, slots=True)
class ReaderCapabilities:
    """The capabilities the gateway checks before configuring a reader."""

    max_antennas: int
    firmware: str = ""
    manufacturer: int = 0  # IANA private enterprise number (Impinj 25882, Zebra 10642)
    model: int = 0
    power_table_dbm: tuple[tuple[int, float], ...] = ()  # (index, dBm), in the reader's order

    def power_index(self, power_dbm: float) -> int:
        """The table index of the highest power not above ``power_dbm`` (the lowest power
        when every level is above it); raise :class:`ValueError` without a table."""
        if not self.power_table_dbm:
            raise ValueError("the reader lists no transmit power levels")
        below = [(dbm, i) for i, dbm in self.power_table_dbm if dbm <= power_dbm + 1e-9]
        if below:
            return max(below)[1]
        return min((dbm, i) for i, dbm in self.power_table_dbm)[1]


def _child(params: list[Param], ptype: int) -> Param | None:
    return next((p for p in params if not p.tv and p.type == ptype), None)


def parse_capabilities(body: bytes) -> ReaderCapabilities:
    """Capabilities from a GET_READER_CAPABILITIES_RESPONSE body (after the header).

    Raises :class:`PayloadError` when GeneralDeviceCapabilities is missing or cut short.
    """
    params = parse_params(body)
    general = _child(params, s.P_GENERAL_DEVICE_CAPABILITIES)
    if general is None or len(general.value) < 14:
        raise PayloadError("capabilities without GeneralDeviceCapabilities")
    antennas, _, manufacturer, model, text_len = struct.unpack_from(">HHIIH", general.value)
    if 14 + text_len > len(general.value):
        raise PayloadError("firmware version overruns GeneralDeviceCapabilities")
    firmware = general.value[14 : 14 + text_len].decode("utf-8", "replace")
    table: list[tuple[int, float]] = []
    regulatory = _child(params, s.P_REGULATORY_CAPABILITIES)
    if regulatory is not None and len(regulatory.value) >= 4:
        band = _child(parse_params(regulatory.value[4:]), s.P_UHF_BAND_CAPABILITIES)
        for p in parse_params(band.value) if band is not None else []:
            if not p.tv and p.type == s.P_TRANSMIT_POWER_LEVEL_TABLE_ENTRY and len(p.value) >= 4:
                index, cdbm = struct.unpack_from(">Hh", p.value)
                table.append((index, cdbm / 100.0))
    return ReaderCapabilities(antennas, firmware, manufacturer, model, tuple(table))


__all__ = ["ReaderCapabilities", "parse_capabilities"]
