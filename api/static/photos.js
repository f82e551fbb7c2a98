// Photos of a bike: added at the registration desk (or by the owner), made smaller in the
// browser first so an upload stays well under the API's body limit (the API re-encodes them
// anyway, without EXIF), and shown on the case view as thumbnails that open full size.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { blobUrl, getJson, postForm } from "./session.js";
import { say } from "./shell.js";

const MAX_SIDE = 1600;

/** `file` as a JPEG at most MAX_SIDE px on its longer side (upright, as the camera meant). */
async function shrink(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

/** Upload each of `files` as a photo of the bike; says how it went in `status`. */
export async function uploadPhotos(bikeId, files, status, caption = "") {
  let done = 0;
  for (const file of files) {
    say(status, t("photos.uploading", { n: done + 1, of: files.length }));
    const form = new FormData();
    let blob = file;
    try {
      blob = await shrink(file);
    } catch {
      // not decodable here (an unusual format): the API gives the reason below
    }
    form.append("photo", blob, file.name.replace(/\.[^.]*$/, "") + ".jpg");
    form.append("caption", caption);
    try {
      await postForm(`/api/v1/bikes/${bikeId}/photos`, form);
      done += 1;
    } catch (err) {
      say(status, t("photos.failed", { name: file.name, reason: err.message }), { error: true });
      return done;
    }
  }
  say(status, t("photos.done", { n: done }));
  return done;
}

/** Show the bike's photos in `container` (nothing when it has none). */
export async function showPhotos(container, bikeId) {
  let photos = [];
  try {
    photos = await getJson(`/api/v1/bikes/${bikeId}/photos`);
  } catch {
    photos = [];
  }
  container.hidden = photos.length === 0;
  const items = await Promise.all(
    photos.map(async (p) => {
      const img = h("img", { src: await blobUrl(p.thumbnail_url), alt: p.caption || t("photos.alt"), loading: "lazy" });
      const open = async () => window.open(await blobUrl(p.url), "_blank", "noopener");
      return h("figure", {}, h("button", { type: "button", class: "photo", onclick: open }, img), p.caption ? h("figcaption", {}, p.caption) : null);
    }),
  );
  container.querySelector(".photo-list").replaceChildren(...items);
}
