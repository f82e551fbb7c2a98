"""Adapters of the engine core's storage port (:class:`track_engine.core.port.EngineStorage`):
PostgreSQL in production (:mod:`.postgres`), memory for the accuracy benchmark and tests
(:mod:`.memory`)."""
