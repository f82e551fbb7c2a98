// Export buttons of the case view (the API renders GPX, KML and CSV; GeoJSON is the route
// itself) and the printable case sheet.
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { download, session } from "./session.js";
import { say } from "./shell.js";

export function wireExports({ plate, query, status, beforePrint }) {
  const base = `/api/v1/routes/${encodeURIComponent(plate)}`;
  const safe = plate.replace(/[^A-Za-z0-9]/g, "") || "bike";
  for (const button of document.querySelectorAll("#exports [data-format]")) {
    button.addEventListener("click", async () => {
      const format = button.dataset.format;
      const url = format === "geojson" ? `${base}?${query}` : `${base}/export?${query}&format=${format}`;
      say(status, t("export.working", { format: format.toUpperCase() }));
      try {
        await download(url, `route-${safe}.${format}`);
        say(status, t("export.done", { format: format.toUpperCase() }));
      } catch (err) {
        say(status, err.message, { error: true });
      }
    });
  }
  document.getElementById("print").addEventListener("click", () => {
    document.getElementById("sheet-meta").textContent = t("sheet.meta", {
      who: session.username() || "",
      at: dateTime(new Date().toISOString()),
    });
    beforePrint();
    // Let Leaflet redraw at the print size before the dialog takes its snapshot.
    setTimeout(() => window.print(), 300);
  });
}
