"""Pipeline benchmarks behind ``tagtrail bench ingest|latency|query|memory``.

One module per benchmark (:mod:`.ingest`, :mod:`.latency`, :mod:`.query`, :mod:`.memory`),
sharing a synthetic read workload (:mod:`.workload`), pseudo-terminal readers (:mod:`.ptys`)
and the plumbing to run each on a fresh database with the gateway and engine as separate
processes (:mod:`.common`). Every benchmark returns a plain dict: the command prints it as a
table, or as one JSON document with ``--json``. Traffic goes to 127.0.0.1 only.
"""
