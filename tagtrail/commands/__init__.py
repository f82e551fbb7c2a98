"""CLI commands, one module per area. Each module has ``register(app, bench)``, which adds its
commands to the top-level app and its benchmarks to ``tagtrail bench``."""
