"""TagTrail composition root: settings, the embedded stack, the CLI and the demo.

The four components (``reader_gateway``, ``track_engine``, ``api``, ``simulators``) never import
this package; it wires them together with explicit arguments.
"""
