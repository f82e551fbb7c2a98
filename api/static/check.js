// The public stolen check: a plate or frame number in, "reported stolen (since a day)" or
// "not reported stolen" out. No login; the API limits how often one address may ask.
import { t } from "./i18n.js";
import { say, startPage } from "./shell.js";

const form = document.getElementById("check");
const status = document.getElementById("check-status");

function by() {
  return form.querySelector("input[name=by]:checked").value;
}

for (const radio of form.querySelectorAll("input[name=by]")) {
  radio.addEventListener("change", () => {
    document.getElementById("value-label").textContent = t(by() === "plate" ? "search.plate" : "search.frame");
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = form.value.value.trim();
  const answer = document.getElementById("answer");
  if (!value) {
    say(status, t("check.missing"), { error: true });
    form.value.focus();
    return;
  }
  say(status, t("check.working"));
  const response = await fetch(`/api/v1/public/stolen-check?${new URLSearchParams({ [by()]: value })}`);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    answer.hidden = true;
    say(status, body.detail || response.statusText, { error: true });
    return;
  }
  say(status, "");
  answer.hidden = false;
  answer.classList.toggle("stolen", body.reported_stolen);
  document.getElementById("answer-title").textContent = body.reported_stolen
    ? t("check.stolen", { value: body.value, day: body.reported_on })
    : t("check.clear", { value: body.value });
  document.getElementById("answer-advice").textContent = t(body.reported_stolen ? "check.adviceStolen" : "check.adviceClear");
});

startPage({ needsLogin: false });
