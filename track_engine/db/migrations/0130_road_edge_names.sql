-- Street names of the road network's edges (OSM `name`, else `ref`; the generated city's
-- synthetic names): the console's map labels, the readers' addresses and search by street.
-- NULL: the road has no name.
ALTER TABLE road_edges ADD COLUMN IF NOT EXISTS name text;
