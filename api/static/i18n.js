// English and Simplified Chinese: one small dictionary per language, the choice remembered
// in localStorage. Static markup carries data-i18n attributes; scripts call t() when they
// render and re-render on the "tagtrail:lang" event.
import en from "./lang-en.js";
import zh from "./lang-zh.js";

const DICTIONARIES = { en, "zh-CN": zh };
const KEY = "tagtrail.lang";

export function lang() {
  const saved = localStorage.getItem(KEY);
  if (saved && DICTIONARIES[saved]) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

/** The text of `key` in the chosen language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = DICTIONARIES[lang()][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

const ATTRIBUTES = [
  ["data-i18n-placeholder", "placeholder"],
  ["data-i18n-aria-label", "aria-label"],
  ["data-i18n-title", "title"],
];

/** Translate the static markup under `root`. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [data, attr] of ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attr, t(el.getAttribute(data)));
  }
  document.documentElement.lang = lang();
  const title = document.querySelector("meta[name=tagtrail-title]")?.content;
  if (title) document.title = `${t(title)} · TagTrail`;
}

export function setLang(code) {
  localStorage.setItem(KEY, code);
  applyI18n();
  document.dispatchEvent(new Event("tagtrail:lang"));
}

/** Run `render` now and again whenever the language changes. */
export function onLang(render) {
  document.addEventListener("tagtrail:lang", render);
}
