"""Transports: the only modules that open serial ports, reader sockets, or talk to the broker.

``serial`` (one thread per port), ``llrp`` (one LLRP client session thread per reader),
``mqtt_link`` (the paho connection), ``gateway`` (the steps
that join them to the normalizer and the spool), ``mqtt`` (the configuration-free gateway).
"""
