// The duty desk: every alert of a watched bike and every stolen frame presented at a desk,
// newest on top, announced to screen readers, with a beep and a link to the bike's route.
import { beep, setSound } from "./beep.js";
import { dateTime } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { follow, getJson } from "./session.js";
import { say, startPage } from "./shell.js";

const MAX_ROWS = 200;
const events = []; // newest first
const plates = new Map(); // bike id -> plate (alerts carry the bike id only)

async function plateOf(bikeId) {
  if (!plates.has(bikeId)) {
    plates.set(bikeId, getJson(`/api/v1/bikes/${bikeId}`).then((b) => b.plate || "", () => ""));
  }
  return plates.get(bikeId);
}

function routeLink(item) {
  if (!item.plate) return "—";
  const query = new URLSearchParams(
    item.case_number ? { case_number: item.case_number } : { reason: t("desk.reason", { id: item.id }) },
  );
  return h("a", { href: `/routes/${encodeURIComponent(item.plate)}?${query}` }, t("desk.openRoute"));
}

function describe(item) {
  if (item.event === "stolen_match") return t("desk.stolenMatch", { kind: item.data.kind || "" });
  return item.data.kind === "armed" ? t("desk.armed") : t("desk.stolen");
}

function render() {
  const rows = events.map((item) =>
    row(
      [
        dateTime(item.at),
        h("span", { class: `tag ${item.event}` }, describe(item)),
        [item.plate, item.case_number].filter(Boolean).join(" · ") || "—",
        item.data.reader_id || (item.data.event_id ? t("desk.event", { id: item.data.event_id }) : "—"),
        routeLink(item),
      ],
      { class: item.fresh ? "fresh" : null },
    ),
  );
  fillTable(document.getElementById("alerts"), rows, t("desk.none"));
}

async function onEvent(event, data) {
  const bikeId = data.bike_id ?? data.stolen_bike_id;
  const item = {
    event,
    data,
    id: data.alert_id ?? data.flag_id,
    at: data.read_at || data.raised_at,
    case_number: data.case_number,
    plate: bikeId ? await plateOf(bikeId) : "",
    fresh: true,
  };
  for (const e of events) e.fresh = false;
  events.unshift(item);
  events.length = Math.min(events.length, MAX_ROWS);
  render();
  say(document.getElementById("announce"), `${describe(item)}: ${item.plate} ${item.data.reader_id || ""}`);
  beep();
}

function wireSound() {
  const button = document.getElementById("sound");
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
  const live = document.getElementById("live");
  // A resume (the stream reconnecting with its last event id) replays what was raised
  // meanwhile: like any location lookup it states its reason, and the API audits it.
  const reason = encodeURIComponent("duty desk: resume after a dropped connection");
  follow(`/api/v1/live/alerts?reason=${reason}`, onEvent, (state) => {
    live.textContent = state === "live" ? t("live.on") : t("live.reconnecting");
    live.classList.toggle("off", state !== "live");
  });
}
