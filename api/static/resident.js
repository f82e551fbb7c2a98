// The resident's page: their own bikes (theft status, armed watches), reporting a theft,
// arming "alert me if it moves", the alerts that fired, and booking a tagging slot.
import { dateTime, isoToLocalInput, localInputToIso } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { Slots } from "./resident-slots.js";
import { deleteJson, getJson, postJson } from "./session.js";
import { say, startPage } from "./shell.js";
import { setError } from "./validate.js";

const $ = (id) => document.getElementById(id);
const MAX_WATCH_MS = 31 * 24 * 3600 * 1000;
let bikes = []; // [{bike, watches}]
let alerts = [];
let current = null; // the bike a dialog is about

function bikeCard({ bike, watches }) {
  const name = [bike.brand, bike.model, bike.colour].filter(Boolean).join(" · ");
  const armed = watches.filter((w) => w.kind === "armed" && !w.closed_at);
  const theft = bike.theft;
  const state = theft
    ? h("p", { class: "tag stolen" }, t("mine.stolen", { status: t(`theft.${theft.status}`), at: dateTime(theft.stolen_at) }),
        theft.case_number ? ` · ${t("mine.case", { n: theft.case_number })}` : "")
    : h("p", { class: "tag ok" }, t("mine.notStolen"));
  const watchLines = armed.map((w) =>
    h("li", {}, t("mine.armedUntil", { until: dateTime(w.ends_at) }), " ",
      h("button", { type: "button", class: "link", onclick: () => disarm(w) }, t("mine.disarm"))),
  );
  return h(
    "article",
    { class: "card bike", "aria-labelledby": `bike-${bike.bike_id}` },
    h("h2", { id: `bike-${bike.bike_id}` }, bike.plate || t("mine.noPlate")),
    h("p", { class: "muted" }, `${name} · ${t("mine.frame", { n: bike.frame_number })}`),
    state,
    watchLines.length ? h("ul", { class: "plain" }, ...watchLines) : null,
    h(
      "div",
      { class: "buttons" },
      theft ? null : h("button", { type: "button", class: "danger", onclick: () => openTheft(bike) }, t("mine.report")),
      theft ? null : h("button", { type: "button", onclick: () => openWatch(bike) }, t("mine.arm")),
    ),
  );
}

function render() {
  const box = $("bikes");
  if (!bikes.length) box.replaceChildren(h("p", { class: "muted" }, t("mine.none")));
  else box.replaceChildren(...bikes.map(bikeCard));
  const plates = new Map(bikes.map(({ bike }) => [bike.bike_id, bike.plate]));
  fillTable(
    $("my-alerts"),
    alerts.map((a) => row([dateTime(a.read_at), a.reader_id, plates.get(a.bike_id) || String(a.bike_id)])),
    t("mine.noAlerts"),
  );
}

async function load() {
  const mine = await getJson("/api/v1/bikes/mine");
  bikes = await Promise.all(
    mine.map(async (bike) => ({ bike, watches: await getJson(`/api/v1/bikes/${bike.bike_id}/watches`) })),
  );
  alerts = (await getJson("/api/v1/alerts/mine?limit=20")).items;
  render();
}

function openDialog(dialog, focus) {
  for (const status of dialog.querySelectorAll(".status")) status.textContent = "";
  dialog.showModal();
  focus.focus();
}

function openTheft(bike) {
  current = bike;
  $("theft-bike").textContent = `${bike.plate || ""} · ${bike.brand} ${bike.model}`;
  $("stolen-at").value = isoToLocalInput(new Date());
  $("stolen-at").max = isoToLocalInput(new Date(Date.now() + 60_000));
  setError($("stolen-at"), "");
  openDialog($("theft-dialog"), $("stolen-at"));
}

function openWatch(bike) {
  current = bike;
  $("watch-until").value = isoToLocalInput(new Date(Date.now() + 8 * 3600 * 1000));
  setError($("watch-until"), "");
  openDialog($("watch-dialog"), $("watch-until"));
}

async function reportTheft(event) {
  event.preventDefault();
  const input = $("stolen-at");
  const when = input.value ? Date.parse(localInputToIso(input.value)) : NaN;
  const problem = Number.isNaN(when) ? "v.required" : when > Date.now() + 60_000 ? "v.future" : "";
  setError(input, problem ? t(problem) : "");
  if (problem) return input.focus();
  try {
    const theft = await postJson("/api/v1/thefts", {
      bike_id: current.bike_id,
      stolen_at: new Date(when).toISOString(),
      place: $("theft-place").value.trim(),
      description: $("theft-description").value.trim(),
    });
    $("theft-dialog").close();
    say($("mine-status"), t("theft.done", { plate: theft.plate || "", id: theft.theft_id }));
    await load();
  } catch (err) {
    say($("theft-status"), err.message, { error: true });
  }
}

async function armWatch(event) {
  event.preventDefault();
  const input = $("watch-until");
  const until = input.value ? Date.parse(localInputToIso(input.value)) : NaN;
  const problem = Number.isNaN(until)
    ? "v.required"
    : until <= Date.now()
      ? "v.past"
      : until - Date.now() > MAX_WATCH_MS
        ? "v.tooLong"
        : "";
  setError(input, problem ? t(problem) : "");
  if (problem) return input.focus();
  try {
    await postJson(`/api/v1/bikes/${current.bike_id}/watches`, { ends_at: new Date(until).toISOString() });
    $("watch-dialog").close();
    say($("mine-status"), t("watch.done", { plate: current.plate || "" }));
    await load();
  } catch (err) {
    say($("watch-status"), err.message, { error: true });
  }
}

async function disarm(watch) {
  try {
    await deleteJson(`/api/v1/watches/${watch.watch_id}`);
    say($("mine-status"), t("watch.disarmed"));
    await load();
  } catch (err) {
    say($("mine-status"), err.message, { error: true });
  }
}

if (startPage({ roles: ["resident"] })) {
  $("theft-form").addEventListener("submit", reportTheft);
  $("watch-form").addEventListener("submit", armWatch);
  for (const cancel of document.querySelectorAll("dialog .cancel")) {
    cancel.addEventListener("click", () => cancel.closest("dialog").close());
  }
  const slots = new Slots($("slots"), $("slots-status"));
  onLang(() => {
    render();
    slots.render();
  });
  load().catch((err) => say($("mine-status"), err.message, { error: true }));
  slots.load().catch((err) => say($("slots-status"), err.message, { error: true }));
}
