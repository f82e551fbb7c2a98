// The officer's case view of one bike: the route on our own road network with times, the
// replay slider, passages, last seen, next readers, cameras, companions, exports, the
// printable sheet; the time window's control; it grows live as passages arrive on the bike's
// stream while the window runs until now.
import { Cameras, Companions, LastSeen, NextReaders } from "./case-panels.js";
import { h } from "./dom.js";
import { wireExports } from "./exports.js";
import { dateTime, duration } from "./format.js";
import { onLang, t } from "./i18n.js";
import { baseMap, drawReaders } from "./map.js";
import { PassageList } from "./passages.js";
import { showPhotos } from "./photos.js";
import { readerLabel } from "./reader-names.js";
import { Replay } from "./replay.js";
import { RouteLayer } from "./route-layer.js";
import { WindowControl } from "./route-window.js";
import { follow, getJson } from "./session.js";
import { say, startPage } from "./shell.js";
import { WhereNow } from "./where-now.js";

const $ = (id) => document.getElementById(id);
const RELOAD_AFTER_MS = 2500; // after live passages settle, fetch the stitched route again
const FRESHNESS_MS = 30_000; // how often the newest stored read is looked at
const BEHIND_S = 300; // stored reads older than this: the page says newer ones may be missing

const plate = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
// The lookup is audited with the case number or reason the officer gave on the search page.
const why = new URLSearchParams();
for (const key of ["case_number", "reason"]) if (params.get(key)) why.set(key, params.get(key));
if (!why.toString()) why.set("reason", "console lookup");
// The lookups' query: why, and the window (since / until) from the address, kept in step
// with it by the window control.
const routeQuery = new URLSearchParams(why);
const WINDOW_KEYS = ["since", "until"];
for (const key of WINDOW_KEYS) if (params.get(key)) routeQuery.set(key, params.get(key));
const windowOf = () => ({ since: routeQuery.get("since") || "", until: routeQuery.get("until") || "" });
const EMPTY_ROUTE = { type: "Feature", geometry: { type: "LineString", coordinates: [] }, properties: {} };

let feature = null;
let fitted = false;
let reloadTimer = null;
let live = null; // the live stream's AbortController, while the window runs until now
let generation = 0; // bumped when the window changes: older answers are dropped

function renderTitle() {
  $("title-plate").textContent = plate;
  $("sheet-plate").textContent = `${plate} · ${why.get("case_number") || why.get("reason")}`;
}

function renderWindow() {
  const { since, until } = feature ? feature.properties : windowOf();
  $("bike-line").textContent =
    since || until
      ? t("route.window", { since: since ? dateTime(since) : "—", until: until ? dateTime(until) : t("window.now") })
      : "";
}

async function loadRoute(ctx) {
  const gen = generation;
  const answer = await getJson(`/api/v1/routes/${encodeURIComponent(plate)}?${routeQuery}`);
  if (gen !== generation) return feature;
  feature = answer;
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

// Last seen and next readers are about now, whatever the window; companions are refreshed
// with them (at most once a minute, see Companions.refresh).
async function loadSides(ctx, bikeId) {
  ctx.companions.refresh();
  await Promise.all([
    ctx.lastSeen.load(bikeId, why),
    ctx.whereNow.load(bikeId, why),
    ctx.next.load(bikeId, why).catch((err) => say($("status"), err.message, { error: true })),
  ]);
}

// Companions are looked for from the bike's open theft, over the window.
function companionsQuery() {
  const query = new URLSearchParams();
  // The officer's case number (the API falls back to the theft's) and reason, as given.
  for (const key of ["case_number", "reason"]) if (why.get(key)) query.set(key, why.get(key));
  for (const key of WINDOW_KEYS) if (routeQuery.get(key)) query.set(key, routeQuery.get(key));
  return query;
}

// A companion's case view, under the same case number or reason, from the same start.
function companionHref(companionPlate, theft) {
  const query = new URLSearchParams(why);
  const since = routeQuery.get("since") || theft?.stolen_at;
  if (since) query.set("since", since);
  if (routeQuery.get("until")) query.set("until", routeQuery.get("until"));
  return `/routes/${encodeURIComponent(companionPlate)}?${query}`;
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
  say($("live"), t("live.new", { reader: readerLabel(passage.reader_id) }));
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    loadRoute(ctx).catch(() => {});
    loadSides(ctx, bikeId);
  }, RELOAD_AFTER_MS);
}

function followLive(ctx, bikeId) {
  const query = new URLSearchParams(why);
  // Start at the newest passage shown, so one that closes after the page loaded (passages
  // are stored a little after the bike has gone) still arrives.
  const passages = feature?.properties.passages || [];
  if (passages.length) query.set("since", passages[passages.length - 1].closest_at);
  live = new AbortController();
  follow(
    `/api/v1/live/bikes/${bikeId}?${query}`,
    (event, data) => {
      if (event === "passage") onPassage(ctx, bikeId, data);
    },
    (state) => {
      $("live").textContent = state === "live" ? t("live.on") : t("live.reconnecting");
      $("live").classList.toggle("off", state !== "live");
    },
    live.signal,
  );
}

function stopLive() {
  live?.abort();
  live = null;
  clearTimeout(reloadTimer);
  $("live").textContent = "";
}

// Nothing in the window: the map, the list and the slider are emptied.
function clearRoute(ctx) {
  feature = null;
  renderWindow();
  ctx.layer.setFeature(EMPTY_ROUTE);
  ctx.layer.bike.remove(); // no route, no bike marker
  ctx.passages.set([]);
  ctx.replay.pause();
  const end = Date.parse(routeQuery.get("until") || "") || Date.now();
  ctx.replay.setRange(end, end);
  $("passage-count").textContent = "0";
}

// The bike's id (from the plate when the window had no route) and its open theft (for
// companions and "since the theft"), looked up once; a failed theft lookup is tried again
// with the next window, and its message is the companions panel's.
async function findBike(ctx) {
  if (ctx.bikeId == null) ctx.bikeId = (await getJson(`/api/v1/bikes?plate=${encodeURIComponent(plate)}`)).bike_id;
}

async function findTheft(ctx) {
  if (ctx.theft !== undefined) return "";
  try {
    ctx.theft = (await getJson(`/api/v1/bikes/${ctx.bikeId}`)).theft;
    ctx.window.setTheft(ctx.theft?.stolen_at);
    return "";
  } catch (err) {
    return err.message;
  }
}

/** Show the window in routeQuery: route, passages, cameras, companions; live if it runs until now. */
async function showWindow(ctx) {
  const gen = ++generation;
  stopLive();
  fitted = false;
  ctx.window.show(windowOf());
  say($("status"), t("route.loading"));
  try {
    await loadRoute(ctx);
    if (gen !== generation) return;
    ctx.bikeId = feature.properties.bike_id;
  } catch (err) {
    if (gen !== generation) return;
    clearRoute(ctx);
    ctx.cameras.load(plate, routeQuery); // says the API's refusal of the window too
    if (err.status !== 404) {
      say($("status"), err.message, { error: true });
      ctx.companions.clear();
      return;
    }
    // Not seen in the window: the window is empty, or (running until now) the bike is waited
    // for on the live stream, if the plate is registered at all.
    try {
      await findBike(ctx);
      say($("status"), routeQuery.get("until") ? t("route.emptyWindow", { plate }) : t("route.notSeen", { plate }));
    } catch (lookup) {
      say($("status"), lookup.status === 404 ? t("search.none", { value: plate }) : lookup.message, { error: true });
      ctx.companions.clear();
      return;
    }
  }
  if (feature) ctx.cameras.load(plate, routeQuery);
  if (!ctx.photosShown) {
    ctx.photosShown = true;
    showPhotos($("photos-panel"), ctx.bikeId);
  }
  if (!routeQuery.get("until")) followLive(ctx, ctx.bikeId);
  ctx.lastSeen.load(ctx.bikeId, why);
  ctx.next.load(ctx.bikeId, why).catch((err) => say($("status"), err.message, { error: true }));
  if (ctx.bikeId != null) ctx.whereNow.start(ctx.bikeId, why);
  const theftError = await findTheft(ctx);
  if (gen !== generation) return;
  if (theftError) ctx.companions.clear(theftError);
  else ctx.companions.setQuery(ctx.theft?.theft_id, ctx.theft ? companionsQuery() : "");
}

// The officer chose a window: into the address (a reload or a link keeps it), then shown.
function applyWindow(ctx, { since, until }) {
  const url = new URL(location.href);
  for (const [key, value] of [["since", since], ["until", until]]) {
    if (value) {
      routeQuery.set(key, value);
      url.searchParams.set(key, value);
    } else {
      routeQuery.delete(key);
      url.searchParams.delete(key);
    }
  }
  if (url.href !== location.href) history.pushState(null, "", url);
  showWindow(ctx);
}

// How current the stored reads are, city-wide: the officer sees when the answer may be behind
// (the pipeline is catching up), not only how long ago this bike was seen.
async function showFreshness() {
  const box = $("freshness");
  try {
    const ingest = await getJson("/api/v1/stats/ingest?window_minutes=1");
    const behind = ingest.lag_s != null && ingest.lag_s > BEHIND_S;
    box.classList.toggle("behind", behind);
    box.textContent =
      ingest.lag_s == null
        ? ""
        : t(behind ? "fresh.behind" : "fresh.current", {
            age: behind ? duration(ingest.lag_s) : t("fmt.ago", { d: duration(ingest.lag_s) }),
          });
  } catch {
    box.textContent = "";
  }
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
  ctx.whereNow = new WhereNow($("where-now"), map);
  ctx.cameras = new Cameras($("cameras"), $("cameras-status"));
  const companions = h("section", { id: "companions-panel" });
  $("passages").closest("section").before(companions);
  ctx.companions = new Companions(companions, { routeHref: (other) => companionHref(other, ctx.theft) });
  const windowBox = h("div");
  $("status").after(windowBox);
  ctx.window = new WindowControl(windowBox, { onApply: (w) => applyWindow(ctx, w) });
  window.addEventListener("popstate", () => {
    const address = new URLSearchParams(location.search);
    for (const key of WINDOW_KEYS) {
      if (address.get(key)) routeQuery.set(key, address.get(key));
      else routeQuery.delete(key);
    }
    showWindow(ctx);
  });
  let printSnap = map.options.zoomSnap;
  wireExports({
    plate,
    // The object, not its text: an export is made of the window shown when it is clicked.
    query: routeQuery,
    caseLabel: () => why.get("case_number") || why.get("reason"),
    status: $("export-status"),
    beforePrint: () => {
      map.invalidateSize();
      if (!layer.bounds().isValid()) return;
      // The passages' labels (time, reader and its address) sit right of their dots: keep
      // room for the widest, so the one at the east end is not cut off on paper.
      const labels = [...map.getContainer().querySelectorAll(".time-label")];
      const widest = Math.max(0, ...labels.map((e) => e.getBoundingClientRect().width));
      const room = Math.min(widest + 16, map.getSize().x / 2);
      // Paper has no zoom buttons: a fractional zoom fills the map instead of halving it.
      printSnap = map.options.zoomSnap;
      map.options.zoomSnap = 0.25;
      // No animation: the print snapshot (and anyone measuring the sheet) comes right after
      // this handler, mid-zoom otherwise, with the labels still where they were.
      map.fitBounds(layer.bounds().pad(0.05), {
        paddingTopLeft: [40, 40],
        paddingBottomRight: [room + 40, 40],
        animate: false,
      });
    },
    afterPrint: () => {
      map.options.zoomSnap = printSnap;
      map.invalidateSize();
    },
  });
  onLang(() => {
    renderTitle();
    renderWindow();
    ctx.lastSeen.render();
    ctx.whereNow.render();
    if (live) $("live").textContent = $("live").classList.contains("off") ? t("live.reconnecting") : t("live.on");
    ctx.passages.render();
    ctx.next.render();
    ctx.cameras.render();
    ctx.companions.render();
    ctx.replay.show();
    if (feature) renderStatus(ctx);
  });
  showFreshness();
  setInterval(showFreshness, FRESHNESS_MS);
  await showWindow(ctx);
}

if (startPage({ roles: ["officer"] })) main();
