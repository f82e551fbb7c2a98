"""Reader gateway: the only part of TagTrail that talks to reader hardware.

Pipeline (in order): transport (serial port or MQTT subscription) -> protocol decoder (pure,
bytes in, reads out) -> validation -> normalization (canonical tag id, UTC, reader clock fix)
-> batching -> publish the wire contract (:mod:`reader_gateway.wire`).

Exceptions: errors this package raises derive from :class:`reader_gateway.errors.GatewayError`;
decoders report :class:`reader_gateway.protocols.base.ProtocolError` subclasses.
"""
