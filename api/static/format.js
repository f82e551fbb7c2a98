// How times, durations and numbers are shown: in the browser's time zone, with the zone named,
// in the chosen language's conventions.
import { lang, t } from "./i18n.js";

const formatters = new Map();

function formatter(kind) {
  const key = `${lang()}:${kind}`;
  if (!formatters.has(key)) {
    const options = {
      datetime: { dateStyle: "medium", timeStyle: "medium", hourCycle: "h23" },
      time: { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" },
      zone: { timeZoneName: "short" },
    }[kind];
    formatters.set(key, new Intl.DateTimeFormat(lang(), options));
  }
  return formatters.get(key);
}

/** "29 Nov 2026, 13:40:05" in the local zone; "—" for nothing. */
export function dateTime(iso) {
  return iso ? formatter("datetime").format(new Date(iso)) : "—";
}

/** "13:40:05" in the local zone. */
export function clock(iso) {
  return iso ? formatter("time").format(new Date(iso)) : "—";
}

/** The local zone's short name, e.g. "GMT+8", shown once beside time columns. */
export function zoneName() {
  const part = formatter("zone").formatToParts(new Date()).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

/** A duration in seconds as "45 s", "12 min", "3 h 5 min". */
export function duration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return t("fmt.seconds", { n: s });
  const m = Math.round(s / 60);
  if (m < 90) return t("fmt.minutes", { n: m });
  return t("fmt.hours", { h: Math.floor(m / 60), m: m % 60 });
}

/** "in 4 min" / "4 min ago" relative to now. */
export function relative(iso) {
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  return s >= 0 ? t("fmt.in", { d: duration(s) }) : t("fmt.ago", { d: duration(-s) });
}

export function number(value, digits = 0) {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: digits }).format(value);
}

/** The value of an <input type=datetime-local> (local time) as an ISO instant with zone. */
export function localInputToIso(value) {
  return new Date(value).toISOString();
}

/** A Date as the value of an <input type=datetime-local>. */
export function isoToLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(
    date.getHours(),
  )}:${pad(date.getMinutes())}`;
}
