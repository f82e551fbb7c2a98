// The officer's case view of one bike: the route on our own road network with times, the
// replay slider, passages, last seen, next readers, cameras, exports, the printable sheet;
// it grows live as passages arrive on the bike's stream.
import { Cameras, LastSeen, NextReaders } from "./case-panels.js";
import { wireExports } from "./exports.js";
import { dateTime } from "./format.js";
import { onLang, t } from "./i18n.js";
import { baseMap, drawReaders } from "./map.js";
import { PassageList } from "./passages.js";
import { Replay } from "./replay.js";
import { RouteLayer } from "./route-layer.js";
import { follow, getJson } from "./session.js";
import { say, startPage } from "./shell.js";

const $ = (id) => document.getElementById(id);
const RELOAD_AFTER_MS = 2500; // after live passages settle, fetch the stitched route again

const plate = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
// The lookup is audited with the case number or reason the officer gave on the search page.
const why = new URLSearchParams();
for (const key of ["case_number", "reason"]) if (params.get(key)) why.set(key, params.get(key));
if (!why.toString()) why.set("reason", "console lookup");
const routeQuery = new URLSearchParams(why);
for (const key of ["since", "until"]) if (params.get(key)) routeQuery.set(key, params.get(key));

let feature = null;
let fitted = false;
let reloadTimer = null;

function renderTitle() {
  $("title-plate").textContent = plate;
  $("sheet-plate").textContent = `${plate} · ${why.get("case_number") || why.get("reason")}`;
}

function renderWindow() {
  if (!feature) return;
  $("bike-line").textContent = t("route.window", {
    since: dateTime(feature.properties.since),
    until: dateTime(feature.properties.until),
  });
}

async function loadRoute(ctx) {
  feature = await getJson(`/api/v1/routes/${encodeURIComponent(plate)}?${routeQuery}`);
  renderWindow();
  ctx.layer.setFeature(feature);
  ctx.passages.set(feature.properties.passages || []);
  const times = (feature.properties.times || []).map((s) => Date.parse(s));
  ctx.replay.setRange(Math.min(...times), Math.max(...times));
  if (!fitted && ctx.layer.bounds().isValid()) {
    ctx.map.fitBounds(ctx.layer.bounds().pad(0.25));
    fitted = true;
  }
  renderStatus(ctx);
  return feature;
}

function renderStatus(ctx) {
  const n = ctx.passages.passages.length;
  $("passage-count").textContent = String(n);
  say($("status"), t("route.summary", { n }));
}

async function loadSides(ctx, bikeId) {
  await Promise.all([
    ctx.lastSeen.load(bikeId, why),
    ctx.next.load(bikeId, why).catch((err) => say($("status"), err.message, { error: true })),
  ]);
}

function onPassage(ctx, bikeId, passage) {
  if (!ctx.passages.add(passage)) return;
  ctx.layer.extend((passage.route_extension || []).map(([lon, lat]) => [lat, lon]), passage);
  if (passage.lat != null && !ctx.map.getBounds().pad(-0.05).contains([passage.lat, passage.lon])) {
    ctx.map.fitBounds(ctx.layer.bounds().extend([passage.lat, passage.lon]).pad(0.2));
  }
  const times = [ctx.replay.start, Date.parse(passage.closest_at)];
  ctx.replay.setRange(Math.min(...times), Math.max(ctx.replay.end, ...times));
  renderStatus(ctx);
  say($("live"), t("live.new", { reader: passage.reader_id }));
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    loadRoute(ctx).catch(() => {});
    loadSides(ctx, bikeId);
  }, RELOAD_AFTER_MS);
}

function followLive(ctx, bikeId) {
  const live = new URLSearchParams(why);
  // Start at the newest passage shown, so one that closes after the page loaded (passages
  // are stored a little after the bike has gone) still arrives.
  const passages = feature?.properties.passages || [];
  if (passages.length) live.set("since", passages[passages.length - 1].closest_at);
  follow(
    `/api/v1/live/bikes/${bikeId}?${live}`,
    (event, data) => {
      if (event === "passage") onPassage(ctx, bikeId, data);
    },
    (state) => {
      $("live").textContent = state === "live" ? t("live.on") : t("live.reconnecting");
      $("live").classList.toggle("off", state !== "live");
    },
  );
}

async function main() {
  renderTitle();
  const { map, readers } = await baseMap($("map"), { label: t("route.map") });
  drawReaders(map, readers, { color: "#57606a" });
  const layer = new RouteLayer(map);
  const ctx = { map, layer };
  ctx.replay = new Replay({
    slider: $("slider"),
    button: $("play"),
    label: $("replay-time"),
    onTime: (time) => {
      layer.showUntil(time);
      ctx.passages?.showUntil(time);
    },
  });
  ctx.passages = new PassageList($("passages"), { onChoose: (time) => ctx.replay.jump(time) });
  ctx.next = new NextReaders($("next"), map, readers);
  ctx.lastSeen = new LastSeen($("last-seen"));
  const cameras = new Cameras($("cameras"), $("cameras-status"));
  wireExports({
    plate,
    query: routeQuery.toString(),
    status: $("export-status"),
    beforePrint: () => {
      map.invalidateSize();
      if (layer.bounds().isValid()) map.fitBounds(layer.bounds().pad(0.15));
    },
  });
  onLang(() => {
    renderTitle();
    renderWindow();
    ctx.lastSeen.render();
    $("live").textContent = $("live").classList.contains("off") ? t("live.reconnecting") : t("live.on");
    ctx.passages.render();
    ctx.next.render();
    cameras.render();
    ctx.replay.show();
    if (feature) renderStatus(ctx);
  });
  let bikeId;
  try {
    await loadRoute(ctx);
    bikeId = feature.properties.bike_id;
  } catch (err) {
    if (err.status !== 404) {
      say($("status"), err.message, { error: true });
      return;
    }
    // Not seen (yet): wait for it on the live stream, if the plate is registered at all.
    try {
      bikeId = (await getJson(`/api/v1/bikes?plate=${encodeURIComponent(plate)}`)).bike_id;
      say($("status"), t("route.notSeen", { plate }));
    } catch (lookup) {
      say($("status"), lookup.status === 404 ? t("search.none", { value: plate }) : lookup.message, { error: true });
      return;
    }
  }
  followLive(ctx, bikeId);
  loadSides(ctx, bikeId);
  cameras.load(plate, routeQuery);
}

if (startPage({ roles: ["officer"] })) main();
