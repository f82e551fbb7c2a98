"""Exception hierarchy of the reader gateway.

GatewayError
├── ConfigError      -- a reader/transport configuration that cannot work
└── SpoolError       -- (reader_gateway.spool) the disk spool cannot do what was asked
    └── SpoolFullError -- its disk budget is used up: the batch was refused
Decoding errors are :class:`reader_gateway.protocols.base.ProtocolError`; they are reported as
rejects by the decoders, never raised through the transport.
"""


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration that cannot work (unknown protocol, duplicate reader id, bad URL)."""
