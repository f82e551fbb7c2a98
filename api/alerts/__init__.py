"""The duty desk's memory: the history of alerts and stolen-match flags, and acknowledgements."""
