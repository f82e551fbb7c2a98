// The operator's view: readers on the map coloured by health (online / silent / deaf /
// offline / never heard: the words of the gateways' retained status), when each was last
// heard (a heartbeat or any frame) and last read a tag, their miss rates (learned from the passages, else the registry's), ingest lag and
// reads per minute, and the reader ids not in the deployment whose reads were held apart,
// refreshed every few seconds.
import { dateTime, duration, number, relative } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { baseMap } from "./map.js";
import { getJson } from "./session.js";
import { say, startPage } from "./shell.js";

const L = window.L;
const REFRESH_MS = 15_000;
const WINDOW_MIN = 15;
const COLORS = { online: "#1a7f37", silent: "#bf8700", deaf: "#8250df", offline: "#cf222e", never_heard: "#57606a" };
const HEALTHS = ["online", "silent", "deaf", "offline", "never_heard"];
// "deaf" and "never heard" have no class of their own in tagtrail.css: their colours go inline.
const INLINE_TAG = { deaf: "background:#fbefff;color:#6639ba", never_heard: "background:#eaeef2;color:#424a53" };
const dot = (health) => h("span", { class: `dot ${health}`, style: INLINE_TAG[health] ? `background:${COLORS[health]}` : null });
const ago = (iso) => (iso ? h("span", { title: dateTime(iso) }, relative(iso)) : "—");
// Last heard: a heartbeat or any frame (the gateway's), or a read stored since.
const lastHeard = (r) => [r.last_heard_at, r.last_read_at].filter(Boolean).sort((a, b) => Date.parse(a) - Date.parse(b)).pop() || null;
const pct = (rate) => `${number(100 * rate)}%`;
const $ = (id) => document.getElementById(id);
let readers = [];
let ingest = null;
let unknown = [];

async function allReaders() {
  const out = [];
  for (let offset = 0; ; offset += 200) {
    const page = await getJson(`/api/v1/readers?limit=200&offset=${offset}`);
    out.push(...page.items);
    if (out.length >= page.total || !page.items.length) return out;
  }
}

function drawMarkers(layer) {
  layer.clearLayers();
  for (const r of readers) {
    L.circleMarker([r.lat, r.lon], {
      radius: 7,
      color: "#fff",
      weight: 2,
      fillColor: COLORS[r.health] || "#57606a",
      fillOpacity: 1,
    })
      .bindTooltip([r.reader_id, r.address, t(`health.${r.health}`)].filter(Boolean).join(" · "))
      .addTo(layer);
  }
}

function drawChart() {
  const chart = $("chart");
  const now = Date.now();
  const buckets = new Map((ingest?.minutes || []).map((m) => [Math.floor(Date.parse(m.minute) / 60000), m.reads]));
  const last = Math.floor(now / 60000);
  const values = Array.from({ length: WINDOW_MIN }, (_, i) => buckets.get(last - WINDOW_MIN + 1 + i) || 0);
  const max = Math.max(1, ...values);
  chart.replaceChildren(...values.map((v) => h("span", { style: `height:${(100 * v) / max}%`, title: String(v) })));
  chart.setAttribute("aria-label", t("ops.chartLabel", { values: values.join(", ") }));
}

function render(layer) {
  drawMarkers(layer);
  const count = (health) => readers.filter((r) => r.health === health).length;
  for (const health of HEALTHS) $(`kpi-${health}`).textContent = String(count(health));
  $("kpi-lag").textContent = ingest?.lag_s == null ? t("ops.noReads") : duration(ingest.lag_s);
  $("kpi-rate").textContent = ingest ? number(ingest.reads_per_minute, 1) : "—";
  drawChart();
  const rate = ingest?.reads_per_reader_per_minute || {};
  const order = { offline: 0, never_heard: 1, silent: 2, deaf: 3, online: 4 };
  const sorted = [...readers].sort((a, b) => order[a.health] - order[b.health] || a.reader_id.localeCompare(b.reader_id));
  fillTable(
    $("readers"),
    sorted.map((r) =>
      row([
        r.reader_id,
        h("span", { class: `tag ${r.health}`, style: INLINE_TAG[r.health] || null }, t(`health.${r.health}`)),
        missRate(r),
        ago(lastHeard(r)),
        ago(r.last_read_at),
        number(rate[r.reader_id] || 0, 1),
      ]),
    ),
    t("ops.none"),
  );
  fillTable(
    $("unknown"),
    unknown.map((u) =>
      row([
        u.registered ? h("span", { title: t("ops.unknownImported") }, `${u.reader_id} ✓`) : u.reader_id,
        number(u.reads),
        number(u.tags),
        ago(u.last_read_at),
        u.gateway_ids.join(", "),
      ]),
    ),
    t("ops.unknownNone"),
  );
}

// The miss rate path choice uses: learned from the passages, else the registry's (greyed).
function missRate(r) {
  if (r.miss_rate_learned == null) return h("span", { class: "muted", title: t("ops.missRegistry") }, pct(r.miss_rate));
  const title = t("ops.missLearned", {
    registry: pct(r.miss_rate),
    passes: number(r.miss_rate_passes || 0),
    at: dateTime(r.miss_rate_learned_at),
  });
  return h("span", { title }, pct(r.miss_rate_learned));
}

async function refresh(layer) {
  try {
    let page;
    [readers, ingest, page] = await Promise.all([
      allReaders(),
      getJson(`/api/v1/stats/ingest?window_minutes=${WINDOW_MIN}`),
      getJson("/api/v1/unknown-readers?limit=50"),
    ]);
    unknown = page.items;
    render(layer);
    say($("ops-status"), t("ops.updated", { at: dateTime(new Date().toISOString()) }));
  } catch (err) {
    say($("ops-status"), err.message, { error: true });
  }
}

async function main() {
  const { map } = await baseMap($("map"), { label: t("ops.map") });
  const layer = L.layerGroup().addTo(map);
  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = () => {
    const box = h("div", { class: "map-legend" });
    const fill = () =>
      box.replaceChildren(...HEALTHS.map((k) => h("div", {}, dot(k), t(`health.${k}`))));
    fill();
    onLang(fill);
    return box;
  };
  legend.addTo(map);
  onLang(() => render(layer));
  await refresh(layer);
  setInterval(() => refresh(layer), REFRESH_MS);
}

if (startPage({ roles: ["admin", "officer", "operator"] })) main();
