"""The engine's shell: an MQTT consumer that stores micro-batches through the engine, then acks.

- :mod:`.service` — :class:`~.service.EngineService`, one worker: the loop, idle ticks,
  housekeeping, start and stop;
- :mod:`.config` — :class:`~.config.EngineConfig` (what a worker is told) and its counters;
- :mod:`.session` — the MQTT session: subscribe, a bounded inbox, acks, stored confirmations to
  the gateways, alerts published;
- :mod:`.incoming` — a message decoded and screened as it arrives, on paho's thread;
- :mod:`.batches` — one micro-batch stored (redone, or split to quarantine what is refused),
  acknowledged and counted;
- :mod:`.recovery` — the database connections, replaced with backoff when they are lost.
"""
