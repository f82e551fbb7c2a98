// Draws a bike's route over TagTrail's own road network (no internet needed).
"use strict";
const plate = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
if (!params.get("reason") && !params.get("case_number")) params.set("reason", "console lookup");
const map = L.map("map", { preferCanvas: true });
document.getElementById("title").textContent = plate;

async function getJson(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

function drawNetwork(net) {
  L.geoJSON(net, {
    style: { color: "#9aa3ad", weight: 2 },
    pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4, color: "#1f6feb", weight: 1 })
      .bindTooltip(f.properties.reader_id),
  }).addTo(map);
}

function drawRoute(feature) {
  const coords = feature.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
  const kinds = feature.properties.kinds || [];
  const times = feature.properties.times || [];
  // Observed stretches solid, inferred dashed, gaps dotted grey.
  const styles = {
    observed: { color: "#d1242f", weight: 5 },
    inferred: { color: "#d1242f", weight: 4, dashArray: "8 6" },
    stop: { color: "#8250df", weight: 6 },
    gap: { color: "#6e7781", weight: 3, dashArray: "2 6" },
  };
  for (let i = 1; i < coords.length; i++) {
    const kind = kinds[i] || "inferred";
    L.polyline([coords[i - 1], coords[i]], styles[kind] || styles.inferred)
      .bindTooltip(`${times[i] || ""} (${kind})`).addTo(map);
  }
  const tbody = document.querySelector("#passages tbody");
  for (const p of feature.properties.passages || []) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${p.closest_at}</td><td>${p.reader_id}</td>`;
    tbody.appendChild(tr);
  }
  const last = (feature.properties.passages || []).slice(-1)[0];
  if (last) {
    L.marker([coords[coords.length - 1][0], coords[coords.length - 1][1]])
      .bindPopup(`Last seen at ${last.reader_id}, ${last.closest_at}`).addTo(map).openPopup();
  }
  document.getElementById("status").textContent =
    `${(feature.properties.passages || []).length} passages, last seen ${last ? last.closest_at : "never"}`;
  map.fitBounds(L.latLngBounds(coords).pad(0.2));
}

(async () => {
  try {
    const net = await getJson("/api/v1/network");
    drawNetwork(net);
    map.fitBounds(L.geoJSON(net).getBounds());
    drawRoute(await getJson(`/api/v1/routes/${encodeURIComponent(plate)}?${params}`));
  } catch (err) {
    document.getElementById("status").textContent = `Error: ${err.message}`;
  }
})();
