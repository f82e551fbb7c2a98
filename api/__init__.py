"""HTTP API and web console (FastAPI), organised by domain: ``users`` (login, accounts),
``events``, ``bikes`` (search, registration, slip), ``thefts`` (thefts, watches), ``tracking``
(routes, exports, last seen, next readers, companions), ``live`` (SSE), ``cameras``,
``readers``, ``audit``, ``stats``, ``network``, ``console``. Views are thin: they validate,
call a keyword-only service function, and return. Services reach the database through their
domain's ``store.py`` or the shared registry (:mod:`api.registry`) and never commit; the
request's connection dependency does.

Who may call what is declared per endpoint with the role dependencies of :mod:`api.deps`.
Errors: services raise :class:`api.errors.ApiError` subclasses (or the engine's
NotFoundError); :func:`api.errors.install_error_handlers` maps them to problem+json in one place.
"""
