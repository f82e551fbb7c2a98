// The frame every console page shares: a skip link, the header with the desks this role may
// use, the language switch and logout; and the guard that sends strangers to the login page.
import { applyI18n, lang, onLang, setLang, t } from "./i18n.js";
import { session } from "./session.js";

// Desks in the order they appear; each lists the roles that may use it.
export const DESKS = [
  { href: "/officer", key: "nav.officer", roles: ["officer"] },
  { href: "/desk", key: "nav.desk", roles: ["officer", "admin"] },
  { href: "/registration", key: "nav.registration", roles: ["registrar", "admin"] },
  { href: "/resident", key: "nav.resident", roles: ["resident"] },
  { href: "/operator", key: "nav.operator", roles: ["admin", "officer", "operator"] },
  { href: "/audit", key: "nav.audit", roles: ["auditor", "admin"] },
  { href: "/notices", key: "nav.notices", roles: ["resident", "officer", "admin"] },
];

// Where each role starts after logging in (administrators run the readers).
const HOMES = {
  officer: "/officer",
  admin: "/operator",
  operator: "/operator",
  registrar: "/registration",
  resident: "/resident",
  auditor: "/audit",
};

/** Where a role starts after logging in ("/" lists the desks for a role without one). */
export function homeOf(role) {
  return HOMES[role] || "/";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function renderHeader(header) {
  const role = session.role();
  const nav = el("nav", { "aria-label": t("nav.label") });
  const list = el("ul");
  for (const desk of DESKS.filter((d) => role && d.roles.includes(role))) {
    const link = el("a", { href: desk.href }, t(desk.key));
    if (location.pathname === desk.href) link.setAttribute("aria-current", "page");
    list.append(el("li", {}, link));
  }
  nav.append(list);
  const other = lang() === "en" ? "zh-CN" : "en";
  const langButton = el("button", { type: "button", class: "quiet", lang: other, id: "lang-switch" });
  langButton.textContent = other === "en" ? "English" : "中文";
  langButton.addEventListener("click", () => setLang(other));
  const tools = el("div", { class: "tools" }, langButton);
  if (session.token()) {
    tools.prepend(el("span", { class: "who" }, `${session.username() || ""} · ${t(`role.${role}`)}`));
    const out = el("button", { type: "button", class: "quiet", id: "logout" }, t("nav.logout"));
    out.addEventListener("click", () => session.logout());
    tools.append(out);
  }
  header.replaceChildren(el("a", { href: "/", class: "brand" }, "TagTrail"), nav, tools);
}

/**
 * Set up a page: check the login (and the role, when `roles` is given), draw the header and
 * translate the markup. Returns false when the page must not go on (redirected).
 */
export function startPage({ roles = null, needsLogin = true } = {}) {
  if (needsLogin && !session.requireLogin()) return false;
  if (roles && !roles.includes(session.role())) {
    location.assign(homeOf(session.role()));
    return false;
  }
  const header = document.getElementById("top");
  renderHeader(header);
  onLang(() => renderHeader(header));
  applyI18n();
  return true;
}

/** Show a message in a status element (an aria-live region), as an error or not. */
export function say(element, text, { error = false } = {}) {
  element.textContent = text;
  element.classList.toggle("error", error);
}
