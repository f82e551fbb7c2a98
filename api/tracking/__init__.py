"""A bike's route: passages stitched on the road network, as GeoJSON with times."""
