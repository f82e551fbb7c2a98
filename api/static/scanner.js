// The desk reader: in Chromium the Web Serial API reads the tag id from a USB desk reader in
// text mode (one hex EPC per line); elsewhere the registrar types it, or a reader in keyboard
// mode "types" it into the focused field.
const HEX_EPC = /\b([0-9A-Fa-f]{8,124})\b/;

export const serialAvailable = () => "serial" in navigator;

/**
 * Ask for the desk reader's port, read until a line holds a tag id, and return it (upper
 * case). `signal` aborts the wait.
 */
export async function scanTag({ baudRate = 115200, signal } = {}) {
  const port = await navigator.serial.requestPort();
  await port.open({ baudRate });
  const reader = port.readable.pipeThrough(new TextDecoderStream()).getReader();
  signal?.addEventListener("abort", () => reader.cancel());
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buffer += value;
      // The reader may send a line in pieces: only complete lines are looked at.
      const lines = buffer.split(/\r?\n/);
      buffer = lines.pop();
      for (const line of lines) {
        const match = HEX_EPC.exec(line);
        if (match) return match[1].toUpperCase();
      }
    }
  } finally {
    // Cancelling ends the pipe, which unlocks the port's stream so that the port can close.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
    await port.close().catch(() => {});
  }
}
