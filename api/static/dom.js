// Tiny helpers to build table rows and elements without innerHTML (so no text is ever HTML).

/** An element with attributes and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

/** A table row of cells (each a string or a node). */
export function row(cells, attrs = {}) {
  return h("tr", attrs, ...cells.map((c) => h("td", {}, c)));
}

/** Fill a table body with rows, or one row saying `empty` across all columns. */
export function fillTable(table, rows, empty) {
  const tbody = table.tBodies[0];
  if (rows.length) tbody.replaceChildren(...rows);
  else {
    const columns = table.tHead?.rows[0]?.cells.length || 1;
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: columns, class: "muted" }, empty)));
  }
}
