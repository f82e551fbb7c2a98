// Readers named by where they stand: "R12 · Jiefang Road × 3rd Street". The addresses come
// with the base map (/api/v1/network), which every case view loads before its panels.
const addresses = new Map();

/** Remember each reader's address (reader id -> "Street × Street"). */
export function setReaderAddresses(entries) {
  for (const [id, address] of entries) if (address) addresses.set(id, address);
}

/** A reader id with its address when it has one. */
export function readerLabel(id) {
  const address = addresses.get(id);
  return address ? `${id} · ${address}` : id;
}
