"""The web console's pages (served at ``/``); Leaflet comes from the xstatic-leaflet package."""
