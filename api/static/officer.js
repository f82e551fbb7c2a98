// The officer's search: plate or frame number, with a case number or a reason (both audited),
// then the bike's case view; and the open cases to click through.
import { dateTime } from "./format.js";
import { onLang, t } from "./i18n.js";
import { getJson } from "./session.js";
import { say, startPage } from "./shell.js";

const CASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$/;

/** The case view's address for a plate and the officer's case number / reason. */
export function routeHref(plate, { caseNumber = "", reason = "" } = {}) {
  const params = new URLSearchParams();
  if (caseNumber) params.set("case_number", caseNumber);
  if (reason) params.set("reason", reason);
  return `/routes/${encodeURIComponent(plate)}?${params}`;
}

function fieldError(id, text) {
  const input = document.getElementById(id);
  document.getElementById(`${id}-error`).textContent = text;
  input.setAttribute("aria-invalid", text ? "true" : "false");
  return !text;
}

function validate(form) {
  const caseNumber = form.case.value.trim();
  const reason = form.reason.value.trim();
  const ok = [
    fieldError("identifier", form.identifier.value.trim() ? "" : t("search.error.identifier")),
    fieldError(
      "case",
      !caseNumber && !reason
        ? t("search.error.why")
        : caseNumber && !CASE_PATTERN.test(caseNumber)
          ? t("search.error.case")
          : "",
    ),
  ];
  return ok.every(Boolean);
}

async function search(event) {
  event.preventDefault();
  const form = event.target;
  const status = document.getElementById("search-status");
  if (!validate(form)) {
    form.querySelector("[aria-invalid=true]").focus();
    return;
  }
  const by = form.by.value;
  const value = form.identifier.value.trim();
  say(status, t("search.searching"));
  try {
    const bike = await getJson(`/api/v1/bikes?${new URLSearchParams({ [by]: value })}`);
    location.assign(
      routeHref(bike.plate, { caseNumber: form.case.value.trim(), reason: form.reason.value.trim() }),
    );
  } catch (err) {
    say(status, err.status === 404 ? t("search.none", { value }) : err.message, { error: true });
    form.identifier.focus();
  }
}

let cases = [];

function renderCases() {
  const tbody = document.querySelector("#cases tbody");
  tbody.replaceChildren(
    ...cases.map((c) => {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = routeHref(c.plate || "", { caseNumber: c.case_number || "", reason: c.case_number ? "" : t("cases.reason", { id: c.theft_id }) });
      link.textContent = c.case_number || t("cases.unconfirmed", { id: c.theft_id });
      const cells = [link, c.plate || "—", dateTime(c.stolen_at), t(`theft.${c.status}`)];
      for (const content of cells) {
        const td = document.createElement("td");
        td.append(content);
        tr.append(td);
      }
      return tr;
    }),
  );
  say(document.getElementById("cases-status"), cases.length ? "" : t("cases.none"));
}

async function loadCases() {
  try {
    const [reported, confirmed] = await Promise.all(
      ["reported", "confirmed"].map((s) => getJson(`/api/v1/thefts?status=${s}&limit=50`)),
    );
    cases = [...confirmed.items, ...reported.items].filter((c) => c.plate);
    renderCases();
  } catch (err) {
    say(document.getElementById("cases-status"), err.message, { error: true });
  }
}

if (startPage({ roles: ["officer"] })) {
  const form = document.getElementById("search");
  form.addEventListener("submit", search);
  const label = () => {
    const key = form.by.value === "plate" ? "search.plate" : "search.frame";
    document.getElementById("identifier-label").dataset.i18n = key;
    document.getElementById("identifier-label").textContent = t(key);
  };
  for (const radio of form.by) radio.addEventListener("change", label);
  onLang(renderCases);
  form.identifier.focus();
  loadCases();
}
