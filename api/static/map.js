// The base map: TagTrail's own road network drawn with Leaflet (served locally), so the map
// works on a police network cut off from the internet. A tile server from the settings, if
// any, only adds a background underneath.
import { readerLabel, setReaderAddresses } from "./reader-names.js";
import { getJson } from "./session.js";
import { drawStreets, streetSearch } from "./street-names.js";

const L = window.L;
const ROAD_STYLE = { color: "#8c959f", weight: 2, opacity: 0.9 };
let configPromise = null;

/** The console settings of this deployment (tile server, live poll period). */
export function consoleConfig() {
  configPromise ||= getJson("/api/v1/console/config").catch(() => ({ tile_url: null }));
  return configPromise;
}

/**
 * A map in `element` with the road network; resolves to {map, readers, bounds} where
 * `readers` maps a reader id to its [lat, lon]. Named streets carry tooltips and labels and a
 * search box finds them; readers' addresses are kept for readerLabel (reader-names.js).
 */
export async function baseMap(element, { label } = {}) {
  const map = L.map(element, { zoomSnap: 0.25, keyboard: true, attributionControl: false });
  element.setAttribute("aria-label", label || element.getAttribute("aria-label") || "map");
  const [config, network] = await Promise.all([consoleConfig(), getJson("/api/v1/network")]);
  if (config.tile_url) L.tileLayer(config.tile_url, { maxZoom: 20, opacity: 0.6 }).addTo(map);
  const roads = network.features.filter((f) => f.properties.layer === "roads");
  const roadLayer = L.geoJSON(roads, { style: ROAD_STYLE, interactive: false }).addTo(map);
  // Named streets are drawn like the other roads, with their names (street-names.js).
  const streets = drawStreets(map, network.features.filter((f) => f.properties.layer === "streets"), ROAD_STYLE);
  if (streets.byName.size) streetSearch(map, streets.byName, ROAD_STYLE);
  const readers = new Map();
  const addresses = [];
  for (const f of network.features) {
    if (f.properties.layer !== "readers") continue;
    const [lon, lat] = f.geometry.coordinates;
    readers.set(f.properties.reader_id, [lat, lon]);
    addresses.push([f.properties.reader_id, f.properties.address]);
  }
  setReaderAddresses(addresses);
  const bounds = roadLayer.getBounds();
  if (streets.byName.size) bounds.extend(streets.layer.getBounds());
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  else map.setView([30.27, 120.15], 13);
  // The map's box changes size with the layout (tablet rotation, print): keep tiles right.
  new ResizeObserver(() => map.invalidateSize()).observe(element);
  return { map, readers, bounds };
}

/** Small reader dots with their ids as tooltips (for pages that do not colour them). */
export function drawReaders(map, readers, { color = "#1f6feb" } = {}) {
  const layer = L.layerGroup().addTo(map);
  for (const [id, latlng] of readers) {
    L.circleMarker(latlng, { radius: 3, color, weight: 1, fillOpacity: 0.6 })
      .bindTooltip(readerLabel(id))
      .addTo(layer);
  }
  return layer;
}
