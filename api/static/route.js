// Draws a bike's route over TagTrail's own road network (no internet needed), and redraws it
// whenever the live stream reports a new passage.
"use strict";
Session.requireLogin();
const plate = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
if (!params.get("reason") && !params.get("case_number")) params.set("reason", "console lookup");
const map = L.map("map", { preferCanvas: true });
const routeLayer = L.layerGroup().addTo(map);
document.getElementById("title").textContent = plate;
const styles = {
  observed: { color: "#d1242f", weight: 5 },
  inferred: { color: "#d1242f", weight: 4, dashArray: "8 6" },
  stop: { color: "#8250df", weight: 6 },
  gap: { color: "#6e7781", weight: 3, dashArray: "2 6" },
};
let fitted = false;

function drawNetwork(net) {
  L.geoJSON(net, {
    style: { color: "#9aa3ad", weight: 2 },
    pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4, color: "#1f6feb", weight: 1 })
      .bindTooltip(f.properties.reader_id),
  }).addTo(map);
}

function drawRoute(feature) {
  routeLayer.clearLayers();
  const coords = feature.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
  const kinds = feature.properties.kinds || [];
  const times = feature.properties.times || [];
  // Observed stretches solid, inferred dashed, gaps dotted grey.
  for (let i = 1; i < coords.length; i++) {
    const kind = kinds[i] || "inferred";
    L.polyline([coords[i - 1], coords[i]], styles[kind] || styles.inferred)
      .bindTooltip(`${times[i] || ""} (${kind})`).addTo(routeLayer);
  }
  const passages = feature.properties.passages || [];
  const tbody = document.querySelector("#passages tbody");
  tbody.replaceChildren(...passages.map((p) => {
    const tr = document.createElement("tr");
    for (const text of [p.closest_at, p.reader_id]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
  const last = passages[passages.length - 1];
  if (last) {
    L.marker(coords[coords.length - 1])
      .bindPopup(`Last seen at ${last.reader_id}, ${last.closest_at}`).addTo(routeLayer).openPopup();
  }
  document.getElementById("status").textContent =
    `${passages.length} passages, last seen ${last ? last.closest_at : "never"}`;
  if (!fitted) { map.fitBounds(L.latLngBounds(coords).pad(0.2)); fitted = true; }
  return feature;
}

const loadRoute = () =>
  Session.getJson(`/api/v1/routes/${encodeURIComponent(plate)}?${params}`).then(drawRoute);

async function followLive(bikeId) {
  const live = new URLSearchParams(params);
  for (;;) {
    try {
      document.getElementById("live").textContent = "● live";
      await Session.stream(`/api/v1/live/bikes/${bikeId}?${live}`, (event) => {
        if (event === "passage" || event === "alert") loadRoute();
      });
    } catch (err) {
      document.getElementById("live").textContent = "○ reconnecting";
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

(async () => {
  try {
    const net = await Session.getJson("/api/v1/network");
    drawNetwork(net);
    map.fitBounds(L.geoJSON(net).getBounds());
    const route = await loadRoute();
    if (route.properties.bike_id) followLive(route.properties.bike_id);
  } catch (err) {
    document.getElementById("status").textContent = `Error: ${err.message}`;
  }
})();
