// A short two-tone beep made with the Web Audio API (no sound files to ship). Browsers only
// let a page play sound after the user has interacted with it, so the desk asks for a click
// to switch sound on, which also unlocks the audio context.
let context = null;
let enabled = false;

/** Switch sound on (creating or resuming the audio context; call from a click) or off. */
export async function setSound(on) {
  if (on) {
    context ||= new AudioContext();
    if (context.state === "suspended") await context.resume();
  }
  enabled = on && context.state === "running";
  return enabled;
}

export function beep() {
  if (!enabled) return false;
  const now = context.currentTime;
  for (const [offset, hz] of [[0, 880], [0.18, 660]]) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = "sine";
    osc.frequency.value = hz;
    // A quick fade in and out avoids clicks at the edges of the tone.
    gain.gain.setValueAtTime(0.0001, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.15);
    osc.connect(gain).connect(context.destination);
    osc.start(now + offset);
    osc.stop(now + offset + 0.16);
  }
  return true;
}
