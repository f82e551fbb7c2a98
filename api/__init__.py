"""HTTP API and web console (FastAPI), organised by domain: ``bikes``, ``routes``, ``network``,
``console``. Views are thin: they validate, call a keyword-only service function, and return.
Services read through :mod:`track_engine.db.queries`; no SQL lives in the views.

Errors: services raise :class:`api.errors.ApiError` subclasses (or the engine's NotFoundError);
:func:`api.errors.install_error_handlers` maps them to HTTP statuses in one place.
"""
