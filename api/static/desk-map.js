// The duty desk's overview map: every open theft at its bike's last sighting (plate, case,
// an age that ticks), the thefts never seen listed beside it. Live alerts (the desk's own
// stream, passed in by desk.js) move and flash their bike's marker; a click opens the route.
// A switch adds the "where now" heat of each theft seen at a place (desk-where-now.js).
import { age } from "./ages.js";
import { OverviewWhereNow } from "./desk-where-now.js";
import { h } from "./dom.js";
import { onLang, t } from "./i18n.js";
import { baseMap, drawReaders } from "./map.js";
import { getJson } from "./session.js";
import { say } from "./shell.js";

const L = window.L;
// Looking at where stolen bikes were last heard is a location lookup: it states its reason.
const REASON = "duty desk: overview map of open thefts";
const FLASH_MS = 6_000;
const $ = (id) => document.getElementById(id);

let map = null;
let whereNow = null;
let readers = new Map(); // reader id -> [lat, lon]
const thefts = new Map(); // bike id -> {theft, marker, label}
let reloading = null;
let pending = []; // live alerts that came while the map or the list was loading

// A look at a stolen bike states its grounds: the case's number, else a reason.
function grounds(theft) {
  return new URLSearchParams(
    theft.case_number ? { case_number: theft.case_number } : { reason: t("desk.map.reason", { id: theft.theft_id }) },
  );
}

function routeHref(theft) {
  return `/routes/${encodeURIComponent(theft.plate || "")}?${grounds(theft)}`;
}

function positionOf(seen) {
  if (!seen) return null;
  if (seen.lat != null && seen.lon != null) return [seen.lat, seen.lon];
  return readers.get(seen.reader_id) || null;
}

function labelOf(theft) {
  const seen = theft.last_seen;
  return h(
    "span",
    { class: "theft-label", "data-bike": theft.bike_id, "data-reader": seen ? seen.reader_id : null },
    h("a", { href: routeHref(theft) }, theft.plate || `#${theft.bike_id}`),
    theft.case_number ? ` · ${theft.case_number}` : "",
    seen ? " · " : "",
    seen ? age(seen.at) : "",
  );
}

function place(entry) {
  const latlng = positionOf(entry.theft.last_seen);
  entry.label = labelOf(entry.theft);
  if (!latlng) {
    entry.marker?.remove();
    entry.marker = null;
    return;
  }
  entry.label.dataset.lat = String(latlng[0]);
  entry.label.dataset.lon = String(latlng[1]);
  if (!entry.marker) {
    entry.marker = L.circleMarker(latlng, { radius: 9, color: "#b42318", weight: 3, fillOpacity: 0.7 })
      .on("click", () => location.assign(routeHref(entry.theft)))
      .addTo(map);
  } else {
    entry.marker.setLatLng(latlng);
  }
  entry.marker.unbindTooltip();
  entry.marker.bindTooltip(entry.label, { permanent: true, interactive: true, direction: "auto", className: "theft-tip" });
  whereNow?.update(entry.theft);
}

// Beside the map: a theft never seen, or seen only at a reader with no position.
function offMapItem(theft) {
  const seen = theft.last_seen;
  const when = seen ? [t("desk.map.noPosition", { reader: seen.reader_id }), " ", age(seen.at)] : [t("desk.map.stolen"), " ", age(theft.stolen_at)];
  return h("li", { "data-bike": theft.bike_id }, h("a", { href: routeHref(theft) }, theft.plate || `#${theft.bike_id}`),
    theft.case_number ? ` · ${theft.case_number}` : "", " · ", ...when);
}

function renderUnseen() {
  const unseen = [...thefts.values()].filter((e) => !e.marker);
  const list = $("not-seen");
  list.replaceChildren(...unseen.map((e) => offMapItem(e.theft)));
  if (!unseen.length) list.append(h("li", { class: "muted" }, t("desk.map.allSeen")));
  $("map-count").textContent = t("desk.map.count", { open: thefts.size, unseen: unseen.length });
}

async function loadThefts() {
  const page = await getJson(`/api/v1/thefts/open/last-seen?${new URLSearchParams({ reason: REASON })}`);
  const open = new Set(page.items.map((theft) => theft.bike_id));
  for (const [bikeId, entry] of thefts) {
    if (!open.has(bikeId)) {
      entry.marker?.remove();
      thefts.delete(bikeId);
    }
  }
  for (const theft of page.items) {
    const entry = thefts.get(theft.bike_id) || { marker: null };
    entry.theft = theft;
    thefts.set(theft.bike_id, entry);
    place(entry);
  }
  renderUnseen();
  whereNow?.prune(open);
}

/** Reload the open thefts (once at a time): a theft the map does not know yet was seen. */
export function refreshOverview() {
  reloading ||= loadThefts()
    .catch((err) => say($("map-status"), err.message, { error: true }))
    .finally(() => {
      reloading = null;
      if (!map) return;
      const queued = pending;
      pending = [];
      for (const data of queued) overviewAlert(data);
    });
  return reloading;
}

/** A live alert: move and flash the marker of its bike, with its new last sighting. */
export function overviewAlert(data) {
  if (data.kind !== "theft") return;
  if (!map || reloading) {
    pending.push(data); // applied once the map and the open thefts are in
    return;
  }
  const entry = thefts.get(data.bike_id);
  if (!entry) {
    refreshOverview();
    return;
  }
  const previous = entry.theft.last_seen;
  if (previous && Date.parse(previous.at) > Date.parse(data.read_at)) return; // a late replay
  entry.theft.last_seen = { reader_id: data.reader_id, at: data.read_at, lon: data.lon, lat: data.lat, source: "read" };
  place(entry);
  renderUnseen();
  const el = entry.marker?.getTooltip()?.getElement();
  if (el) {
    el.classList.add("flash");
    setTimeout(() => el.classList.remove("flash"), FLASH_MS);
  }
}

function sayWhereNow(shaded, refused) {
  const note = $("where-now-note");
  if (!$("map-where-now").checked) note.textContent = "";
  else if (refused) say(note, refused, { error: true });
  else say(note, t("desk.map.whereNowCount", { n: shaded }));
}

// The "where now" switch: off unless the officer left it on in this browser.
function startWhereNow() {
  const box = $("map-where-now");
  let shown = [0, ""];
  whereNow = new OverviewWhereNow(map, grounds, (...state) => sayWhereNow(...(shown = state)));
  const open = () => [...thefts.values()].map((e) => e.theft);
  box.checked = OverviewWhereNow.remembered();
  box.addEventListener("change", () => whereNow.set(box.checked, open));
  onLang(() => sayWhereNow(...shown));
  // Left on: once the open thefts are in, ask for them one after the other.
  return () => box.checked && !whereNow.on && whereNow.set(true, open);
}

/** Draw the map in #overview and put the open thefts on it. */
export async function startOverview() {
  try {
    ({ map, readers } = await baseMap($("overview"), { label: t("desk.map.label") }));
    drawReaders(map, readers);
    const resumeWhereNow = startWhereNow();
    await refreshOverview();
    resumeWhereNow();
    $("map-refresh").addEventListener("click", () => refreshOverview());
  } catch (err) {
    say($("map-status"), err.message, { error: true });
  }
}
