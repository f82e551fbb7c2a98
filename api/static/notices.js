// Notice preferences: the signed-in user's own subscriptions (e-mail, signed webhook, an SMS or
// chat service through an apprise URL; which kinds of alert), added, changed and removed
// through /api/v1/notifications/subscriptions, and the recent deliveries with their state
// (an administrator may also look at everyone's outbox).
import { dateTime } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { deleteOnly, getJson, patchJson, postJson, session } from "./session.js";
import { say, startPage } from "./shell.js";

const API = "/api/v1/notifications";
// What each role may hear of (the API refuses the rest: api/notifications/service.py).
const KINDS_BY_ROLE = {
  resident: ["bike_moved"],
  officer: ["stolen_seen", "stolen_frame"],
  admin: ["stolen_seen", "stolen_frame"],
};
const SENT_LIMIT = 20;
const $ = (id) => document.getElementById(id);

let subs = [];
let sent = [];
let editing = null; // the subscription the form changes; null: the form adds one

const kinds = () => KINDS_BY_ROLE[session.role()] || [];
const kindBox = (kind) => $(`kind-${kind}`);

function drawKinds() {
  const chosen = new Set(kinds().filter((k) => kindBox(k)?.checked ?? true));
  const boxes = kinds().map((kind) =>
    h("label", { class: "toggle" }, h("input", { type: "checkbox", id: `kind-${kind}`, value: kind, checked: chosen.has(kind) }), t(`notices.kind.${kind}`)),
  );
  $("kinds").replaceChildren(h("legend", {}, t("notices.kinds")), ...boxes);
}

function hint() {
  $("address-hint").textContent = t(`notices.hint.${$("channel").value}`);
}

function renderSubs() {
  const rows = subs.map((s) =>
    row(
      [
        t(`notices.channel.${s.channel}`),
        h("span", { class: "address" }, s.address),
        s.kinds.map((k) => t(`notices.kind.${k}`)).join(", "),
        h("span", { class: `tag ${s.enabled ? "ok" : ""}`.trim() }, t(s.enabled ? "notices.on" : "notices.off")),
        h(
          "div",
          { class: "buttons tight" },
          h("button", { type: "button", class: "edit", "aria-label": `${t("notices.edit")}: ${s.address}`, onclick: () => edit(s) }, t("notices.edit")),
          h("button", { type: "button", class: "delete danger", "aria-label": `${t("notices.delete")}: ${s.address}`, onclick: () => remove(s) }, t("notices.delete")),
        ),
      ],
      { "data-id": s.subscription_id },
    ),
  );
  fillTable($("subs"), rows, t("notices.none"));
}

function renderSent() {
  const rows = sent.map((n) =>
    row(
      [
        dateTime(n.created_at),
        t(`notices.kind.${n.kind}`),
        t(`notices.channel.${n.channel}`),
        h("span", { class: `tag ${n.status === "sent" ? "ok" : n.status === "failed" ? "offline" : ""}`.trim() }, t(`notices.status.${n.status}`)),
        String(n.attempts),
        n.last_error || "—",
      ],
      { "data-notice": n.notice_id },
    ),
  );
  fillTable($("sent"), rows, t("notices.noneSent"));
}

async function loadSubs() {
  try {
    subs = await getJson(`${API}/subscriptions`);
    renderSubs();
  } catch (err) {
    say($("subs-status"), err.message, { error: true });
  }
}

async function loadSent() {
  const everyone = $("everyone").checked;
  try {
    const page = await getJson(`${API}/${everyone ? "outbox" : "notices"}?limit=${SENT_LIMIT}`);
    sent = page.items;
    renderSent();
    say($("sent-status"), t("notices.sentCount", { shown: sent.length, total: page.total }));
  } catch (err) {
    say($("sent-status"), err.message, { error: true });
  }
}

function resetForm() {
  editing = null;
  $("sub-form").reset();
  $("channel").disabled = false;
  $("enabled").checked = true;
  for (const kind of kinds()) kindBox(kind).checked = true;
  formTitles();
  $("cancel-edit").hidden = true;
  $("address-error").textContent = "";
  $("address").removeAttribute("aria-invalid");
  hint();
}

// The form's heading and button: adding, or changing the subscription being edited.
function formTitles() {
  $("form-title").textContent = editing ? t("notices.editing", { address: editing.address }) : t("notices.add");
  $("save").textContent = t(editing ? "notices.save.edit" : "notices.save.add");
}

function edit(sub) {
  resetForm();
  editing = sub;
  $("channel").value = sub.channel;
  $("channel").disabled = true; // a new channel is a new subscription
  $("address").value = sub.address;
  $("enabled").checked = sub.enabled;
  for (const kind of kinds()) kindBox(kind).checked = sub.kinds.includes(kind);
  formTitles();
  $("cancel-edit").hidden = false;
  $secret(null);
  hint();
  $("address").focus();
}

function $secret(secret) {
  const el = $("secret");
  el.hidden = !secret;
  el.textContent = secret ? t("notices.secret", { secret }) : "";
}

async function save(event) {
  event.preventDefault();
  const address = $("address").value.trim();
  const chosen = kinds().filter((k) => kindBox(k).checked);
  if (!address || !chosen.length) {
    $("address-error").textContent = address ? "" : t("notices.missingAddress");
    $("address").setAttribute("aria-invalid", String(!address));
    say($("form-status"), chosen.length ? "" : t("notices.missingKinds"), { error: true });
    return;
  }
  try {
    if (editing) {
      // An apprise address is shown masked: send it only if the user typed a new one.
      const body = { kinds: chosen, enabled: $("enabled").checked };
      if (address !== editing.address) body.address = address;
      await patchJson(`${API}/subscriptions/${editing.subscription_id}`, body);
      say($("form-status"), t("notices.changed", { address }));
      $secret(null);
    } else {
      const made = await postJson(`${API}/subscriptions`, {
        channel: $("channel").value,
        address,
        kinds: chosen,
        enabled: $("enabled").checked,
      });
      say($("form-status"), t("notices.added", { address: made.address }));
      $secret(made.webhook_secret);
    }
    resetForm();
    await loadSubs();
  } catch (err) {
    say($("form-status"), err.message, { error: true });
  }
}

async function remove(sub) {
  if (!confirm(t("notices.confirmDelete", { address: sub.address }))) return;
  try {
    await deleteOnly(`${API}/subscriptions/${sub.subscription_id}`);
    if (editing?.subscription_id === sub.subscription_id) resetForm();
    say($("subs-status"), t("notices.deleted", { address: sub.address }));
    await loadSubs();
  } catch (err) {
    say($("subs-status"), err.message, { error: true });
  }
}

if (startPage({ roles: Object.keys(KINDS_BY_ROLE) })) {
  drawKinds();
  resetForm();
  $("everyone-box").hidden = session.role() !== "admin";
  $("channel").addEventListener("change", hint);
  $("sub-form").addEventListener("submit", save);
  $("cancel-edit").addEventListener("click", resetForm);
  $("everyone").addEventListener("change", loadSent);
  onLang(() => {
    drawKinds();
    formTitles();
    hint();
    renderSubs();
    renderSent();
  });
  loadSubs();
  loadSent();
}
