"""Server-sent events: a bike's or a case's new passages, route extensions and alerts, and
the duty desk's stream of every alert and stolen-match flag. Reconnect-safe: each event's id
is the cursor to resume from (``Last-Event-ID``)."""
