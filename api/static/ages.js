// Figures that age while a page stays open: "4 min ago" keeps counting, an ETA that has
// passed is marked missed, and the newest stored read says how current everything is.
// One timer per page re-renders every element made here.
import { h } from "./dom.js";
import { dateTime, relative } from "./format.js";
import { t } from "./i18n.js";

const TICK_MS = 15_000;
// An ETA is "missed" once this long has passed after it without a sighting there.
const MISSED_GRACE_MS = 60_000;
let timer = null;

/** A <time> showing "4 min ago" (the full time as its title) that keeps ticking. */
export function age(iso) {
  startTicking();
  return h("time", { datetime: iso, "data-age": "", title: dateTime(iso) }, relative(iso));
}

/** Attributes of a row whose ETA can pass: it is marked `missed` once it has. */
export function etaAttrs(iso) {
  startTicking();
  const missed = Date.parse(iso) + MISSED_GRACE_MS < Date.now();
  return { "data-eta": iso, class: missed ? "missed" : null };
}

/** The "missed" label of an ETA cell (shown only while its row is marked missed). */
export function missedLabel() {
  return h("span", { class: "missed-label" }, ` ${t("next.missed")}`);
}

/** Bring every age and ETA on the page up to now (also run by the page's timer). */
export function tickAges(root = document) {
  for (const el of root.querySelectorAll("time[data-age]")) {
    el.textContent = relative(el.getAttribute("datetime"));
  }
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-eta]")) {
    el.classList.toggle("missed", Date.parse(el.dataset.eta) + MISSED_GRACE_MS < now);
  }
}

function startTicking() {
  if (timer == null) timer = setInterval(() => tickAges(), TICK_MS);
}
