// Export buttons of the case view (the API renders GPX, KML and CSV; GeoJSON is the route
// itself) and the printable case sheet.
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { download, session } from "./session.js";
import { say } from "./shell.js";

// The PDF sheet writes its times in the officer's own zone, like the console does.
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function wireExports({ plate, query, caseLabel, status, beforePrint, afterPrint }) {
  const base = `/api/v1/routes/${encodeURIComponent(plate)}`;
  const safe = plate.replace(/[^A-Za-z0-9]/g, "") || "bike";
  for (const button of document.querySelectorAll("#exports [data-format]")) {
    button.addEventListener("click", async () => {
      const format = button.dataset.format;
      const zone = format === "pdf" ? `&tz=${encodeURIComponent(browserZone())}` : "";
      const url = format === "geojson" ? `${base}?${query}` : `${base}/export?${query}&format=${format}${zone}`;
      say(status, t("export.working", { format: format.toUpperCase() }));
      try {
        await download(url, `route-${safe}.${format}`);
        say(status, t("export.done", { format: format.toUpperCase() }));
      } catch (err) {
        say(status, err.message, { error: true });
      }
    });
  }
  // The sheet's head (case, officer, when) and the map laid out at its paper size and fitted
  // to the route, whether printing starts from the button or from the browser's own menu.
  let prepared = false;
  const prepare = () => {
    if (prepared) return;
    prepared = true;
    document.getElementById("sheet-meta").textContent = t("sheet.meta", {
      case: caseLabel(),
      who: session.username() || "",
      at: dateTime(new Date().toISOString()),
    });
    document.body.classList.add("printing");
    beforePrint();
  };
  window.addEventListener("beforeprint", prepare);
  window.addEventListener("afterprint", () => {
    prepared = false;
    document.body.classList.remove("printing");
    afterPrint();
  });
  document.getElementById("print").addEventListener("click", () => {
    prepare();
    // Let Leaflet redraw at the print size before the dialog takes its snapshot.
    setTimeout(() => window.print(), 300);
  });
}
