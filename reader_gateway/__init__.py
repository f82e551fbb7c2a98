"""Reader gateway: the only part of TagTrail that talks to reader hardware.

Pipeline (in order): transport (serial port, LLRP session or MQTT subscription) -> decoder (pure,
bytes in, reads out) -> validation -> normalization (reader id, antenna map, UTC, reader clock
estimate and fix, de-duplication) -> batching -> disk spool (fsync; a read is accepted once it
is here) -> publish the wire contract (:mod:`reader_gateway.wire`) with bounded in-flight.
docs/gateway.md describes the configuration file, the spool and the health topics.

Exceptions: errors this package raises derive from :class:`reader_gateway.errors.GatewayError`
(configuration: ``ConfigError``; spool: :class:`reader_gateway.spool.SpoolError`); decoders
report :class:`reader_gateway.protocols.base.ProtocolError` subclasses as rejects.
"""
