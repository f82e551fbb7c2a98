"""The engine's pure core: its state as one object, and the steps that turn state and reads
into new state and effects (passages to write, stored passages to retire, alerts to raise).

Nothing here touches a database, a broker or a web framework (an import-linter contract in
pyproject.toml keeps it so): :class:`track_engine.core.engine.Engine` talks to storage only
through the :class:`track_engine.core.port.EngineStorage` port, so the same engine runs on
PostgreSQL in production and on :class:`track_engine.storage.memory.MemoryStorage` in the
accuracy benchmark and tests.
"""
