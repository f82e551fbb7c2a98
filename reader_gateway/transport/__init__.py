"""Transports: the only modules that open serial ports, reader sockets, or talk to the broker.

``serial`` (one thread per port), ``llrp`` (one LLRP client thread per reader) with
``llrp_session`` (one connection's messages), ``mqtt_link`` (the paho connection), ``mqtt``
(the configuration-free gateway). The steps that join them to the normalizer and the spool
are :mod:`reader_gateway.orchestrator`.
"""
