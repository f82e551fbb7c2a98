// Field-by-field validation of console forms: rules mirror the API's request models, errors
// sit under their field (aria-describedby, aria-invalid), and the API's 422 problem+json
// errors land on the same fields by their path (data-path="owner.id_number").
import { t } from "./i18n.js";

/** Show (or clear, with "") the error of one input. */
export function setError(input, text) {
  const box = document.getElementById(`${input.id}-error`);
  if (box) box.textContent = text;
  input.setAttribute("aria-invalid", text ? "true" : "false");
}

/**
 * Check the inputs of `form` that have a rule; `rules` maps an input id to a function of its
 * value returning an i18n key ("" when fine). Shows each error; returns true if all pass.
 */
export function validateForm(form, rules) {
  let ok = true;
  for (const [id, rule] of Object.entries(rules)) {
    const input = form.querySelector(`#${id}`);
    const key = rule(input.value);
    setError(input, key ? t(key) : "");
    ok &&= !key;
  }
  if (!ok) form.querySelector("[aria-invalid=true]")?.focus();
  return ok;
}

/** Check one field as the user leaves it (and again while they fix it). */
export function validateOnBlur(form, rules) {
  for (const [id, rule] of Object.entries(rules)) {
    const input = form.querySelector(`#${id}`);
    const check = () => setError(input, rule(input.value) ? t(rule(input.value)) : "");
    input.addEventListener("blur", () => input.value && check());
    input.addEventListener("input", () => input.getAttribute("aria-invalid") === "true" && check());
  }
}

/** Put the API's 422 errors on their fields; returns how many found a field. */
export function showServerErrors(form, problem) {
  let placed = 0;
  for (const err of problem.errors || []) {
    const path = (err.loc || []).filter((p) => p !== "body").join(".");
    const input = form.querySelector(`[data-path="${path}"]`);
    if (input) {
      setError(input, err.msg);
      placed += 1;
    }
  }
  form.querySelector("[aria-invalid=true]")?.focus();
  return placed;
}

export function clearErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) setError(input, "");
}

// Rules shared by the desks (the patterns are the API's).
export const required = (v) => (v.trim() ? "" : "v.required");
export const pattern = (re, key) => (v) => (!v.trim() ? "v.required" : re.test(v.trim()) ? "" : key);
export const optional = (rule) => (v) => (v.trim() ? rule(v) : "");
export const hasAlnum = (v) => (!v.trim() ? "v.required" : /[\p{L}\p{N}]/u.test(v) ? "" : "v.alnum");
