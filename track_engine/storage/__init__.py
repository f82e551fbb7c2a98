"""The engine's storage: the port the core talks through (:mod:`.port`) and its adapters —
PostgreSQL in production (:mod:`.postgres`), memory for the accuracy benchmark and tests
(:mod:`.memory`)."""
