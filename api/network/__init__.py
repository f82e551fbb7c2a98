"""The road network and readers, for routing and for the offline base map."""
