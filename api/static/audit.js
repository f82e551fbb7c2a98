// The auditor's page: the audit log searched by actor, action (or a family of actions), bike,
// case and time window, newest first, a page at a time; an actor, bike or case in the list
// searches for everything else under it; the current search's entries save as CSV. The search
// lives in the page's address, so Back, reload and a copied link give the same list. The API
// decides who may read the log (auditor, admin): anyone else sees its refusal here.
import { dateTime, isoToLocalInput, localInputToIso, number, zoneName } from "./format.js";
import { onLang, t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { getJson } from "./session.js";
import { say, startPage } from "./shell.js";

const FILTERS = ["actor", "action", "bike_id", "case_number", "since", "until"];
const TIMES = new Set(["since", "until"]);
const EXPORT_PAGE = 200; // the API's largest page
const EXPORT_MAX = 10_000;
const CSV_COLUMNS = ["audit_id", "at", "actor", "role", "action", "subject", "bike_id", "case_number", "reason", "remote_addr", "detail"];
const $ = (id) => document.getElementById(id);
let shown = null; // the page on screen ({items, total, limit, offset}); null after an error
let searches = 0; // answers to a search that was overtaken are dropped

/** The search in the page's address (filters, offset, limit). */
function query() {
  return new URLSearchParams(location.search);
}

/** `params` plus the page size of the current address, if it names one. */
function withLimit(params) {
  const limit = query().get("limit");
  if (limit) params.set("limit", limit);
  return params;
}

function toIso(local) {
  return Number.isNaN(new Date(local).getTime()) ? local : localInputToIso(local);
}

function formFilters(form) {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, TIMES.has(name) ? toIso(value) : value);
  }
  return withLimit(params);
}

function fillForm(form, params) {
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    const date = new Date(value);
    form.elements[name].value = TIMES.has(name) && value && !Number.isNaN(date.getTime()) ? isoToLocalInput(date) : value;
  }
}

/** Show the search `params`: into the address (a history entry) and the form, then load it. */
function go(params) {
  const search = params.toString();
  history.pushState(null, "", search ? `${location.pathname}?${search}` : location.pathname);
  fillForm($("filters"), params);
  return load();
}

/** A link that searches for everything with this `name` = `value` (alone: other filters go). */
function filterLink(name, value, title) {
  const params = withLimit(new URLSearchParams({ [name]: String(value) }));
  const onclick = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    go(params).then(() => $("entries-title").focus());
  };
  return h("a", { href: `${location.pathname}?${params}`, title, "data-filter": name, onclick }, String(value));
}

function roleName(role) {
  const text = t(`role.${role}`);
  return text === `role.${role}` ? role : text;
}

function detailCell(detail) {
  if (!detail || !Object.keys(detail).length) return "—";
  const compact = JSON.stringify(detail);
  const short = compact.length > 40 ? `${compact.slice(0, 39)}…` : compact;
  return h(
    "details",
    { class: "json" },
    h("summary", { title: t("audit.showDetail") }, h("code", {}, short)),
    h("pre", {}, JSON.stringify(detail, null, 2)),
  );
}

function entryRow(e) {
  const caseLink = e.case_number ? filterLink("case_number", e.case_number, t("audit.byCase", { case: e.case_number })) : null;
  const why = caseLink || e.reason ? h("span", {}, caseLink, caseLink && e.reason ? " · " : null, e.reason || null) : "—";
  return row(
    [
      h("time", { datetime: e.at, title: e.at }, dateTime(e.at)),
      filterLink("actor", e.actor, t("audit.byActor", { actor: e.actor })),
      roleName(e.role),
      e.action,
      e.subject || "—",
      e.bike_id == null ? "—" : filterLink("bike_id", e.bike_id, t("audit.byBike", { id: e.bike_id })),
      why,
      e.remote_addr || "—",
      detailCell(e.detail),
    ],
    { "data-audit-id": String(e.audit_id) },
  );
}

function render() {
  const table = $("entries");
  table.querySelector(".zone").textContent = zoneName() ? `(${zoneName()})` : "";
  const items = shown?.items || [];
  if (shown) fillTable(table, items.map(entryRow), t("audit.none"));
  else table.tBodies[0].replaceChildren();
  const count = $("count");
  if (!shown) count.textContent = "";
  else if (items.length) {
    count.textContent = t("audit.count", {
      from: number(shown.offset + 1),
      to: number(shown.offset + items.length),
      total: number(shown.total),
    });
  } else count.textContent = t("audit.total", { total: number(shown.total) });
  $("prev").disabled = !shown || shown.offset === 0;
  $("next").disabled = !shown || shown.offset + items.length >= shown.total;
  $("export").disabled = !shown || shown.total === 0;
}

async function load() {
  const mine = ++searches;
  const status = $("audit-status");
  say(status, t("audit.loading"));
  try {
    const page = await getJson(`/api/v1/audit?${query()}`);
    if (mine !== searches) return;
    shown = page;
    say(status, "");
  } catch (err) {
    if (mine !== searches) return;
    shown = null;
    say(status, err.status === 403 ? t("audit.forbidden", { detail: err.message }) : err.message, { error: true });
  }
  render();
}

function turn(direction) {
  if (!shown) return;
  const params = query();
  const offset = Math.max(0, shown.offset + direction * shown.limit);
  if (offset) params.set("offset", String(offset));
  else params.delete("offset");
  go(params);
}

function csvCell(value) {
  if (value == null) return "";
  let text = typeof value === "object" ? JSON.stringify(value) : String(value);
  // Reasons and subjects are typed by people: a spreadsheet must not run one as a formula.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replaceAll('"', '""')}"`;
}

function toCsv(entries) {
  const lines = [CSV_COLUMNS.map(csvCell), ...entries.map((e) => CSV_COLUMNS.map((c) => csvCell(e[c])))];
  return lines.map((cells) => cells.join(",")).join("\r\n") + "\r\n";
}

function save(text, name) {
  // The byte-order mark makes spreadsheets read the file as UTF-8 (Chinese names and reasons).
  const href = URL.createObjectURL(new Blob(["\ufeff", text], { type: "text/csv;charset=utf-8" }));
  const a = h("a", { href, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

/** Every entry of the current filters (up to EXPORT_MAX), fetched a page at a time, as CSV. */
async function exportCsv() {
  const status = $("export-status");
  const button = $("export");
  const params = new URLSearchParams();
  for (const name of FILTERS) if (query().get(name)) params.set(name, query().get(name));
  button.disabled = true;
  try {
    // Entries written meanwhile push older ones down a place: a page may repeat the previous
    // page's last entry, never skip one (the log is append-only); ids drop the repeats.
    const seen = new Set();
    const entries = [];
    let total = 0;
    for (let offset = 0; entries.length < EXPORT_MAX; offset += EXPORT_PAGE) {
      params.set("limit", String(EXPORT_PAGE));
      params.set("offset", String(offset));
      const page = await getJson(`/api/v1/audit?${params}`);
      total = page.total;
      for (const e of page.items) {
        if (seen.has(e.audit_id) || entries.length >= EXPORT_MAX) continue;
        seen.add(e.audit_id);
        entries.push(e);
      }
      say(status, t("audit.exporting", { n: number(entries.length), total: number(total) }));
      if (page.items.length < EXPORT_PAGE) break;
    }
    const stamp = isoToLocalInput(new Date()).replace(/[-:]/g, "").replace("T", "-");
    save(toCsv(entries), `audit-${stamp}.csv`);
    const done = entries.length < total ? "audit.exportCapped" : "audit.exported";
    say(status, t(done, { n: number(entries.length), total: number(total) }));
  } catch (err) {
    say(status, err.message, { error: true });
  } finally {
    button.disabled = !shown || shown.total === 0;
  }
}

if (startPage()) {
  const form = $("filters");
  fillForm(form, query());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(formFilters(form));
  });
  $("clear").addEventListener("click", () => {
    form.reset();
    go(withLimit(new URLSearchParams()));
  });
  $("prev").addEventListener("click", () => turn(-1));
  $("next").addEventListener("click", () => turn(1));
  $("export").addEventListener("click", exportCsv);
  window.addEventListener("popstate", () => {
    fillForm(form, query());
    load();
  });
  onLang(render);
  load();
}
