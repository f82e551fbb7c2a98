// The login page: log in, then go where the user was headed, or to their role's desk.
import { t } from "./i18n.js";
import { session } from "./session.js";
import { DESKS, homeOf, say, startPage } from "./shell.js";

const form = document.getElementById("login");
const error = document.getElementById("login-error");
const next = new URLSearchParams(location.search).get("next");

function showDesks() {
  const role = session.role();
  form.hidden = true;
  document.getElementById("desks").hidden = false;
  const list = document.getElementById("desk-list");
  list.replaceChildren(
    ...DESKS.filter((d) => d.roles.includes(role)).map((d) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = d.href;
      a.textContent = t(d.key);
      li.append(a);
      return li;
    }),
  );
  document.getElementById("auditor-note").hidden = role !== "auditor";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    say(error, t("login.missing"), { error: true });
    (username ? form.password : form.username).focus();
    return;
  }
  try {
    const role = await session.login(username, password);
    // Only a path on this site: never follow a "next" to somewhere else.
    if (next && next.startsWith("/") && !next.startsWith("//")) location.assign(next);
    else if (homeOf(role) !== "/") location.assign(homeOf(role));
    else {
      startPage({ needsLogin: false });
      showDesks();
    }
  } catch (err) {
    say(error, err.status === 429 ? t("login.locked") : t("login.failed"), { error: true });
    form.password.select();
  }
});

startPage({ needsLogin: false });
if (session.token()) showDesks();
else form.username.focus();
document.addEventListener("tagtrail:lang", () => session.token() && showDesks());
