"""Transports: the only modules that open serial ports or talk to the broker."""
