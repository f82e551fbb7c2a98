"""The engine's own storage: migrations (and the re-keying they run), connecting, the COPY
writer, stored passages as frames, the road network the engine routes on, its watch list,
quarantine and the periodic reader miss-rate job. No registry or tracking SQL: that is the
API's (``api/<domain>/store.py``, ``api/registry/``)."""
