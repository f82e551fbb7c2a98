"""Pure protocol decoders and encoders, one module per reader wire format.

``DECODERS`` maps a protocol name (as written in gateway configuration) to a factory that
builds a fresh decoder for one reader connection; decoders keep per-connection state (partial
frames), so never share one between connections. Encoders live beside their decoders and are
what the simulators use to send the bytes real readers send.

Errors: decoders report bad input as :class:`~reader_gateway.protocols.base.Reject` values
carrying a :class:`~reader_gateway.protocols.base.ProtocolError` subclass; they do not raise.
:func:`make_decoder` raises :class:`UnknownProtocolError` for a name not in the registry.
"""

from __future__ import annotations

from collections.abc import Callable

from reader_gateway.protocols.base import Decoder
from reader_gateway.protocols.impinj_iot import ImpinjIotDecoder
from reader_gateway.protocols.llrp import LlrpDecoder
from reader_gateway.protocols.r2000 import R2000Decoder, encode_realtime_inventory
from reader_gateway.protocols.tagtrail_active import TagtrailActiveDecoder
from reader_gateway.protocols.zebra_iotc import ZebraIotcDecoder
from reader_gateway.wire import READER_PROTOCOLS


class UnknownProtocolError(LookupError):
    """A protocol name that no decoder is registered under (a configuration mistake)."""


DECODERS: dict[str, Callable[[], Decoder]] = {
    # MQTT messages and webhook bodies: one decode() call per complete payload.
    "impinj-iot": lambda: ImpinjIotDecoder(mode="message"),
    # The HTTP NDJSON stream (GET /api/v1/data/stream): arbitrary chunks.
    "impinj-iot-stream": lambda: ImpinjIotDecoder(mode="stream"),
    # MQTT messages and HTTP POST batches.
    "zebra-iotc": ZebraIotcDecoder,
    # Serial byte stream; answers each round summary with a new real-time inventory command.
    "r2000": R2000Decoder,
    # Our own active-tag frame (docs/protocols/tagtrail-active.md); serial or TCP stream.
    "tagtrail-active": TagtrailActiveDecoder,
    # LLRP over TCP port 5084 (Impinj Speedway/R700, Zebra FX7500/FX9600, ...); answers each
    # KEEPALIVE with KEEPALIVE_ACK. The ROSpec set-up exchange belongs to the transport.
    "llrp": LlrpDecoder,
}

# The names are listed once, in the wire contract (the readers API validates with that list):
# a decoder added here without its name there, or the reverse, stops the gateway at import.
if set(DECODERS) != set(READER_PROTOCOLS):
    raise RuntimeError(
        f"decoders {sorted(DECODERS)} differ from wire.READER_PROTOCOLS {sorted(READER_PROTOCOLS)}"
    )


# Bytes a transport writes when it opens a connection to a reader of this protocol. R2000
# readers do nothing until told to inventory (the decoder keeps them going afterwards).
START_COMMANDS: dict[str, Callable[[], bytes]] = {
    "r2000": encode_realtime_inventory,
}


def start_command(name: str) -> bytes:
    """Bytes to send to a reader of protocol ``name`` right after connecting (may be empty)."""
    factory = START_COMMANDS.get(name)
    return factory() if factory is not None else b""


def make_decoder(name: str) -> Decoder:
    """Build a new decoder for protocol ``name``; raise :class:`UnknownProtocolError` if none."""
    try:
        factory = DECODERS[name]
    except KeyError:
        known = ", ".join(sorted(DECODERS))
        raise UnknownProtocolError(
            f"unknown reader protocol {name!r}; known protocols: {known}"
        ) from None
    return factory()


__all__ = ["DECODERS", "START_COMMANDS", "UnknownProtocolError", "make_decoder", "start_command"]
