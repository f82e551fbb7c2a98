// Street names on the base map: a tooltip on every named street, labels along the streets
// in view once zoomed in, and a search box that fits the map to a street. Labels are placed
// only for the streets in view and only at high zoom, so a 30k-edge city stays fluid.
import { t } from "./i18n.js";

const L = window.L;
const LABEL_ZOOM = 16;
const MAX_LABELS = 120;
const MAX_RESULTS = 8;

/** Draw `streets` (GeoJSON features with properties.name) with tooltips and labels. */
export function drawStreets(map, streets, style) {
  const layer = L.geoJSON(streets, {
    style,
    onEachFeature: (f, l) => l.bindTooltip(f.properties.name, { sticky: true, className: "street-tip" }),
  }).addTo(map);
  const byName = new Map();
  layer.eachLayer((l) => byName.set(l.feature.properties.name, l));
  const labels = L.layerGroup().addTo(map);
  const relabel = () => placeLabels(map, byName, labels);
  // Placed once the map has its view (the caller fits it), and after every move.
  map.on("zoomend moveend", relabel);
  return { layer, byName };
}

function placeLabels(map, byName, labels) {
  labels.clearLayers();
  if (map.getZoom() < LABEL_ZOOM) return;
  const view = map.getBounds();
  let placed = 0;
  for (const [name, line] of byName) {
    if (placed >= MAX_LABELS) break;
    if (!view.intersects(line.getBounds())) continue;
    const spot = labelSpot(line.getLatLngs(), view);
    if (!spot) continue;
    const text = document.createElement("span");
    text.textContent = name;
    text.style.transform = `translate(-50%, -50%) rotate(${spot.angle}deg)`;
    const icon = L.divIcon({ className: "street-label", html: text, iconSize: null });
    L.marker(spot.latlng, { icon, interactive: false, keyboard: false }).addTo(labels);
    placed += 1;
  }
}

/** The middle of the longest in-view segment of a (multi)line, and its angle kept upright. */
function labelSpot(latlngs, view) {
  const lines = Array.isArray(latlngs[0]) ? latlngs : [latlngs];
  let best = null;
  for (const line of lines) {
    for (let i = 1; i < line.length; i += 1) {
      const a = line[i - 1];
      const b = line[i];
      const mid = L.latLng((a.lat + b.lat) / 2, (a.lng + b.lng) / 2);
      if (!view.contains(mid)) continue;
      const length = a.distanceTo(b);
      if (!best || length > best.length) best = { a, b, mid, length };
    }
  }
  if (!best) return null;
  const dx = (best.b.lng - best.a.lng) * Math.cos((best.mid.lat * Math.PI) / 180);
  const dy = best.b.lat - best.a.lat;
  let angle = (-Math.atan2(dy, dx) * 180) / Math.PI;
  if (angle > 90) angle -= 180;
  if (angle < -90) angle += 180;
  return { latlng: best.mid, angle };
}

/** A search box on the map: streets by name (case-insensitive, any part); choosing one fits
 * the map to it and highlights it for a moment. */
export function streetSearch(map, byName, style) {
  const names = [...byName.keys()].sort((a, b) => a.localeCompare(b));
  const control = L.control({ position: "topright" });
  control.onAdd = () => {
    const box = L.DomUtil.create("div", "street-search leaflet-bar");
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    const input = L.DomUtil.create("input", "", box);
    input.type = "search";
    input.placeholder = t("map.search");
    input.setAttribute("aria-label", t("map.search"));
    const list = L.DomUtil.create("ul", "street-results", box);
    list.setAttribute("role", "listbox");
    const choose = (name) => {
      const line = byName.get(name);
      if (!line) return;
      map.fitBounds(line.getBounds(), { padding: [30, 30], maxZoom: 18 });
      line.setStyle({ color: "#d4a72c", weight: 5 });
      setTimeout(() => line.setStyle(style), 4000);
      input.value = name;
      list.replaceChildren();
    };
    input.addEventListener("input", () => {
      const query = input.value.trim().toLowerCase();
      const found = query ? names.filter((n) => n.toLowerCase().includes(query)).slice(0, MAX_RESULTS) : [];
      list.replaceChildren(
        ...found.map((name) => {
          const item = document.createElement("li");
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = name;
          button.addEventListener("click", () => choose(name));
          item.append(button);
          return item;
        }),
      );
      if (query && !found.length) list.replaceChildren(Object.assign(document.createElement("li"), { textContent: t("map.noStreet") }));
    });
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const first = list.querySelector("button");
      if (first) choose(first.textContent);
    });
    return box;
  };
  control.addTo(map);
  return control;
}
