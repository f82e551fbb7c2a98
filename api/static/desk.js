// The duty desk: alerts of watched bikes and stolen frames presented at a desk, this shift or
// the last 24 hours (what came while no desk was open included), filtered, newest on top;
// new ones arrive live, are announced to screen readers with a beep, and each is
// acknowledged by whoever takes it (the API records who and when, and audits it); every other
// open desk sees the acknowledgement at once, through the same live stream.
import { beep, setSound } from "./beep.js";
import { overviewAlert, startOverview } from "./desk-map.js";
import { dateTime } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { ApiError, follow, getJson, postJson } from "./session.js";
import { say, startPage } from "./shell.js";

const MAX_ROWS = 200;
// A history shows where bikes passed readers: like a resumed stream, it states its reason.
const REASON = "duty desk: alerts of this shift";
const RESUME = "duty desk: resume after a dropped connection";
let items = []; // newest first
let waiting = 0;
const plates = new Map(); // bike id -> plate (live alerts carry the bike id only)
const $ = (id) => document.getElementById(id);
const keyOf = (item) => `${item.source}:${item.id}`;

async function plateOf(bikeId) {
  if (!plates.has(bikeId)) {
    plates.set(bikeId, getJson(`/api/v1/bikes/${bikeId}`).then((b) => b.plate || "", () => ""));
  }
  return plates.get(bikeId);
}

function filters() {
  const form = $("filters");
  const out = {};
  for (const name of ["period", "kind", "acknowledged", "plate", "case"]) {
    const value = form.elements[name].value.trim();
    if (value) out[name] = value;
  }
  return out;
}

function routeLink(item) {
  if (!item.plate) return "—";
  const query = new URLSearchParams(
    item.case_number ? { case_number: item.case_number } : { reason: t("desk.reason", { id: item.id }) },
  );
  return h("a", { href: `/routes/${encodeURIComponent(item.plate)}?${query}` }, t("desk.openRoute"));
}

function describe(item) {
  if (item.source === "flag") return t("desk.stolenMatch", { kind: item.kind || "" });
  return item.kind === "armed" ? t("desk.armed") : t("desk.stolen");
}

function ackCell(item) {
  if (item.acknowledged_at) {
    return h("span", { class: "acked" }, t("desk.ackedBy", { who: item.acknowledged_by || "?", at: dateTime(item.acknowledged_at) }));
  }
  const label = t("desk.ackButton");
  return h("button", { type: "button", class: "ack", "data-key": keyOf(item), "aria-label": `${label}: ${describe(item)} ${item.plate || ""}`, onclick: () => acknowledge(item) }, label);
}

function render() {
  const rows = items.map((item) =>
    row(
      [
        dateTime(item.read_at || item.raised_at),
        h("span", { class: `tag ${item.source === "flag" ? "stolen_match" : "alert"}` }, describe(item)),
        [item.plate, item.case_number].filter(Boolean).join(" · ") || "—",
        item.reader_id || (item.event_id ? t("desk.event", { id: item.event_id }) : "—"),
        routeLink(item),
        ackCell(item),
      ],
      { class: [item.fresh ? "fresh" : "", item.acknowledged_at ? "" : "waiting"].join(" ").trim() || null, "data-key": keyOf(item) },
    ),
  );
  fillTable($("alerts"), rows, t("desk.none"));
  $("count").textContent = t("desk.count", { shown: items.length, waiting });
}

let loading = 0; // bumped per load: an answer to filters changed since is dropped
// Bumped whenever `waiting` is set or changed here: a recount's answer that something
// overtook is dropped, and asked again (it may predate the change).
let counted = 0;
let recounts = 0; // recounts in flight

// Another desk acknowledged an item this desk does not list (filtered out, or beyond the
// MAX_ROWS shown): only the API knows whether it was among the waiting, so ask it.
async function recount() {
  const mine = ++counted;
  const f = filters();
  const query = new URLSearchParams();
  for (const name of ["kind", "plate", "case"]) if (f[name]) query.set(name, f[name]);
  recounts += 1;
  try {
    const answer = await getJson(`/api/v1/alerts/waiting?${query}`);
    if (mine === counted) {
      waiting = answer.unacknowledged;
      render();
    }
  } catch {
    return; // the next load or acknowledgement sets the figure again
  } finally {
    recounts -= 1;
  }
  if (mine !== counted && recounts === 0) recount();
}

async function load() {
  const query = new URLSearchParams({ ...filters(), reason: REASON, limit: String(MAX_ROWS) });
  const mine = ++loading;
  try {
    const page = await getJson(`/api/v1/alerts?${query}`);
    if (mine !== loading) return; // the officer changed the filters meanwhile
    items = page.items;
    waiting = page.unacknowledged;
    counted += 1;
    render();
    const key = page.waiting_since ? "desk.loadedWaiting" : "desk.loaded";
    say($("desk-status"), t(key, { since: dateTime(page.since) }));
  } catch (err) {
    if (mine === loading) say($("desk-status"), err.message, { error: true });
  }
}

async function acknowledge(item) {
  const url = item.source === "flag" ? `/api/v1/alerts/flags/${item.id}/acknowledge` : `/api/v1/alerts/${item.id}/acknowledge`;
  try {
    const done = await postJson(url, {});
    // The live stream's own "ack" for it can come before this answer and has counted it then.
    const counting = !item.acknowledged_at;
    Object.assign(item, { acknowledged_by: done.acknowledged_by, acknowledged_at: done.acknowledged_at });
    if (counting) waiting = Math.max(0, waiting - 1);
    counted += 1;
    render();
    say($("desk-status"), t("desk.acked", { what: describe(item) }));
  } catch (err) {
    // Someone else was first (409): show who, from the API's own record.
    if (err instanceof ApiError && err.status === 409) await load();
    say($("desk-status"), err.message, { error: true });
  }
}

// Does a new live item belong in the list the filters show?
function shown(item) {
  const f = filters();
  if (f.kind && f.kind !== item.kind) return false;
  if (f.acknowledged === "true") return false;
  if (f.case && f.case !== item.case_number) return false;
  if (f.plate && f.plate.replace(/\s+/g, "").toUpperCase() !== (item.plate || "").replace(/\s+/g, "").toUpperCase()) return false;
  return true;
}

// Another desk (or this one) acknowledged an alert or flag: mark its row, who and when.
// One this desk does not list may still be among its waiting: the count is asked again.
function onAck(data) {
  const item = items.find((e) => keyOf(e) === `${data.source}:${data.id}`);
  if (!item) {
    recount();
    return;
  }
  if (item.acknowledged_at) return;
  Object.assign(item, { acknowledged_by: data.acknowledged_by, acknowledged_at: data.acknowledged_at });
  waiting = Math.max(0, waiting - 1);
  counted += 1;
  render();
  say($("announce"), t("desk.ackedElsewhere", { what: describe(item), who: data.acknowledged_by || "?" }));
}

async function onEvent(event, data) {
  if (event === "ack") {
    onAck(data);
    return;
  }
  if (event !== "alert" && event !== "stolen_match") return;
  if (event === "alert") overviewAlert(data);
  const flag = event === "stolen_match";
  const bikeId = data.bike_id ?? data.stolen_bike_id;
  const item = {
    source: flag ? "flag" : "alert",
    id: flag ? data.flag_id : data.alert_id,
    kind: data.kind,
    raised_at: data.raised_at,
    read_at: data.read_at || null,
    bike_id: bikeId,
    plate: bikeId ? await plateOf(bikeId) : "",
    case_number: data.case_number,
    reader_id: data.reader_id || null,
    event_id: data.event_id || null,
    acknowledged_by: null,
    acknowledged_at: null,
    fresh: true,
  };
  if (items.some((e) => keyOf(e) === keyOf(item))) return;
  if (!shown(item)) {
    recount(); // not listed here, yet it may wait under these filters (e.g. "acknowledged")
    return;
  }
  for (const e of items) e.fresh = false;
  items.unshift(item);
  items.length = Math.min(items.length, MAX_ROWS);
  waiting += 1;
  counted += 1;
  render();
  say($("announce"), `${describe(item)}: ${item.plate} ${item.reader_id || ""}`);
  beep();
}

function wireSound() {
  const button = $("sound");
  button.addEventListener("click", async () => {
    const on = await setSound(button.getAttribute("aria-pressed") !== "true");
    button.setAttribute("aria-pressed", String(on));
    button.dataset.i18n = on ? "desk.sound.on" : "desk.sound.off";
    button.textContent = t(button.dataset.i18n);
    if (on) beep();
  });
}

if (startPage({ roles: ["officer", "admin"] })) {
  wireSound();
  render();
  onLang(render);
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  for (const id of ["f-period", "f-kind", "f-ack"]) $(id).addEventListener("change", load);
  const live = $("live");
  // The stream from now on, and the history (what came while no desk was open): an item in
  // both is shown once. A resume (the stream reconnecting with its last event id) replays what was raised
  // meanwhile: like any location lookup it states its reason, and the API audits it.
  follow(`/api/v1/live/alerts?reason=${encodeURIComponent(RESUME)}`, onEvent, (state) => {
    live.textContent = state === "live" ? t("live.on") : t("live.reconnecting");
    live.classList.toggle("off", state !== "live");
  });
  load();
  startOverview();
}
