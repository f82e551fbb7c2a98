"""Photos of a bike: added at registration (or by its owner), shown on the case."""
