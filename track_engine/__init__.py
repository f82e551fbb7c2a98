"""Track engine: normalized read batches in; reads, passages, routes and alerts out.

Pipeline (in order, see :mod:`track_engine.pipeline`): decode batch -> store raw reads (COPY,
idempotent) -> raise alerts for watched tags -> fold reads into passages -> store closed
passages. Routes are stitched from passages on the road graph (:mod:`track_engine.routes`).

The pure core (``passages``, ``roads``, ``routes``) never touches the database or the broker;
``db/`` owns the engine's own storage: the schema (numbered SQL migrations), the COPY writer,
the road network it loads, its watch list, quarantine and the periodic miss-rate job. The
registry and tracking queries are the API's (``api/<domain>/store.py``, ``api/registry/``).
Errors raised here derive from :class:`track_engine.errors.EngineError`.
"""
