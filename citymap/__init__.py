"""Real places: road networks (OpenStreetMap import, junction consolidation, network files)
and reader deployments (CSV / GeoJSON import, snapping readers to junctions).

Production code used by ``tagtrail roads import`` and ``tagtrail readers import``; the
simulators build on it too. It imports nothing else from TagTrail but the wire contract.
"""
