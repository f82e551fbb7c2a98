// The registration desk: the form with field-by-field checks (the ID check character too),
// the tag id from the desk reader, conflicts said plainly, and the printable slip.
import { EventDesk } from "./events-desk.js";
import { idNumberProblem } from "./idnumber.js";
import { onLang, t } from "./i18n.js";
import { uploadPhotos } from "./photos.js";
import { scanTag, serialAvailable } from "./scanner.js";
import { getText, postJson } from "./session.js";
import { say, startPage } from "./shell.js";
import {
  clearErrors,
  hasAlnum,
  optional,
  pattern,
  required,
  setError,
  showServerErrors,
  validateForm,
  validateOnBlur,
} from "./validate.js";

const $ = (id) => document.getElementById(id);
const form = $("register");
let booking = null; // the booking being registered, if any

const RULES = {
  "owner-name": required,
  "owner-phone": pattern(/^\+?[0-9][0-9 -]{4,19}$/, "v.phone"),
  "owner-id": (v) => (v.trim() ? (idNumberProblem(v) ? `v.id.${idNumberProblem(v)}` : "") : "v.required"),
  plate: hasAlnum,
  frame: hasAlnum,
  tag: pattern(/^[0-9A-Fa-f]{1,124}$/, "v.tag"),
  "photo-url": optional(pattern(/^https?:\/\/\S+$/, "v.url")),
};

// Which fields a conflict is about, from the codes the API uses.
const CONFLICT_FIELDS = { "tag-bound": "tag", "plate-taken": "plate", "frame-registered": "frame", "stolen-match": "frame" };
const CONFLICT_WORDS = [[/\btag\b/i, "tag"], [/\bplate\b/i, "plate"], [/\bframe\b/i, "frame"], [/\bmotor\b/i, "motor"]];

function body(eventId) {
  const v = (id) => $(id).value.trim();
  return {
    owner: { name: v("owner-name"), phone: v("owner-phone"), id_number: v("owner-id").toUpperCase(), address: v("owner-address") },
    brand: v("brand"),
    model: v("model"),
    colour: v("colour"),
    frame_number: v("frame"),
    motor_number: v("motor"),
    photo_url: v("photo-url"),
    plate: v("plate"),
    tag_id: v("tag").toUpperCase(),
    event_id: booking?.event_id ?? eventId ?? null,
    booking_id: booking?.booking_id ?? null,
  };
}

function showConflict(err) {
  const box = $("conflict");
  const code = err.code;
  box.classList.toggle("stolen", code === "stolen-match");
  const title = document.createElement("strong");
  title.textContent = t(`conflict.${code}`) !== `conflict.${code}` ? t(`conflict.${code}`) : t("conflict.other");
  const detail = document.createElement("p");
  detail.textContent = err.message;
  box.replaceChildren(title, detail);
  box.hidden = false;
  const fields = new Set([CONFLICT_FIELDS[code]]);
  for (const [re, id] of CONFLICT_WORDS) if (re.test(err.message)) fields.add(id);
  for (const id of fields) if (id) setError($(id), t(`conflict.field.${id}`));
  box.focus();
}

let registeredBike = null; // the bike just registered, for its photos

async function showSlip(bike) {
  registeredBike = bike;
  $("photos").value = "";
  say($("photos-status"), "");
  const done = $("done");
  $("done-title").textContent = t("reg.done", { id: bike.bike_id, plate: bike.plate || "" });
  $("slip").srcdoc = await getText(`/api/v1/bikes/${bike.bike_id}/slip`);
  form.hidden = true;
  done.hidden = false;
  done.focus();
}

async function submit(event, desk) {
  event.preventDefault();
  $("conflict").hidden = true;
  if (!validateForm(form, RULES)) {
    say($("reg-status"), t("reg.fix"), { error: true });
    return;
  }
  say($("reg-status"), t("reg.sending"));
  try {
    const bike = await postJson("/api/v1/bikes", body(desk.eventId));
    say($("reg-status"), "");
    await showSlip(bike);
    desk.loadBookings();
  } catch (err) {
    say($("reg-status"), "");
    if (err.status === 422 && showServerErrors(form, err.problem)) say($("reg-status"), t("reg.fix"), { error: true });
    else if (err.status === 409) showConflict(err);
    else say($("reg-status"), err.message, { error: true });
  }
}

function startBooking(b) {
  booking = b;
  const line = $("booking-line");
  line.hidden = false;
  line.textContent = t("reg.forBooking", { who: b.username });
  $("owner-name").focus();
}

function wireScanner() {
  const hint = $("tag-hint");
  const button = $("scan");
  const render = () => {
    hint.textContent = serialAvailable() ? t("reg.scan.serial") : t("reg.scan.typed");
  };
  render();
  onLang(render);
  if (!serialAvailable()) {
    button.hidden = true;
    return;
  }
  button.addEventListener("click", async () => {
    say(hint, t("reg.scan.waiting"));
    try {
      const tag = await scanTag();
      if (tag) $("tag").value = tag;
      setError($("tag"), "");
      render();
    } catch (err) {
      say(hint, t("reg.scan.failed", { why: err.message }), { error: true });
    }
  });
}

// After the form's own reset (the Clear button, or form.reset() for the next bike).
function clearState() {
  clearErrors(form);
  booking = null;
  $("booking-line").hidden = true;
  $("conflict").hidden = true;
  $("done").hidden = true;
  form.hidden = false;
  $("owner-name").focus();
}

if (startPage({ roles: ["registrar", "admin"] })) {
  const desk = new EventDesk({ select: $("event"), table: $("bookings"), status: $("events-status"), onRegister: startBooking });
  form.addEventListener("submit", (e) => submit(e, desk));
  form.addEventListener("reset", () => setTimeout(clearState));
  $("conflict").tabIndex = -1;
  validateOnBlur(form, RULES);
  wireScanner();
  $("print-slip").addEventListener("click", () => $("slip").contentWindow.print());
  $("photos").addEventListener("change", async (event) => {
    if (registeredBike) await uploadPhotos(registeredBike.bike_id, [...event.target.files], $("photos-status"));
  });
  $("next-bike").addEventListener("click", () => form.reset());
  onLang(() => {
    desk.renderEvents();
    desk.render();
  });
  desk.load().catch((err) => say($("events-status"), err.message, { error: true }));
  $("owner-name").focus();
}
