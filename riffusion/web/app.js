// The jam page's entry module: an endless stream of generated clips, interpolating between seeds and
// prompts, played back to back on the Web Audio clock while the spectrograms scroll by in 3D.
//   api.js       the server's HTTP API: fetches, clip requests, back-off between failed tries
//   sequence.js  which interpolation step is asked for next (seeds, transitions, queued prompts)
//   player.js    gapless playback with crossfades on the Web Audio clock, loop bars, recording
//   jam.js       the clips and the loop that asks ahead of playback and follows what is heard
//   session.js   the session record (every clip played, for `riffusion render`) and its link form
//   wav.js       WAV encoding for downloads
//   timeline.js  the 3D spectrogram timeline (three.js)
//   ui.js        the page: controls, prompt panel, settings, share panel, status

import { Jam, urlNumber } from "./jam.js";
import { UI } from "./ui.js";

const params = new URLSearchParams(window.location.search);
let timeline = null; // loaded after the music starts; the jam goes on without it
const jam = new Jam({
  params,
  speed: Math.max(1, urlNumber(params, "debugSpeed") || 1), // test-only: play clips this many times faster
  onPiece: (clip, at, length) => { if (timeline && clip.image) timeline.addClip(clip.counter, clip.image, at, length); },
  onIdle: (show) => ui.showIdle(show),
});
const ui = new UI(jam);

// Read-only test hook: what a headless browser test checks instead of listening.
const view = (clip) => ({
  counter: clip.counter, alpha: clip.alpha, state: clip.state, transition: !!clip.transition,
  start: { ...clip.start }, end: { ...clip.end }, duration: clip.duration ?? null, barSeconds: clip.barSeconds ?? null,
});
window.__riff = Object.freeze({
  get clips() { return jam.clips.map(view); },
  get playing() { return jam.playing; },
  get transportSeconds() { return jam.player.transportSeconds; },
  get state() { return jam.state; },
  get upNext() { return jam.upNext; },
  get upcoming() { return jam.upcomingPrompts; },
  get requests() {
    return jam.requests.map((r) => ({
      alpha: r.alpha, start: { ...r.start }, end: { ...r.end }, ...(r.rhythm ? { rhythm: { ...r.rhythm } } : {}),
    }));
  },
  get settings() { return { ...jam.settings }; },
  get meshCount() { return timeline ? timeline.meshCount : 0; },
  get textureCount() { return timeline ? timeline.textureCount : 0; },
  get softwareRendering() { return timeline ? timeline.software : null; },
  get framesDrawn() { return timeline ? timeline.framesDrawn : 0; },
  get buffersHeld() { return jam.clips.filter((c) => c.buffer).length; },
  get isPlaying() { return jam.isPlaying; },
  get recordedChunks() { return jam.player.recording.length; },
  session() { return jam.session(); }, // the session so far (docs/sessions.md)
  get loadedSession() { return jam.loadedSession; }, // the session a link carried, or null
  get replayLeft() { return jam.replayLeft; }, // its clips still to replay
});

async function main() {
  await jam.load();
  ui.init();
  try {
    const { Timeline } = await import("./timeline.js");
    timeline = new Timeline(document.getElementById("timeline"));
  } catch (error) {
    console.warn("3D timeline unavailable:", error.message); // the music goes on without it
  }
  setInterval(() => jam.tick(), 50);
  const frame = () => {
    if (timeline) timeline.render(jam.player.transportSeconds);
    ui.frame();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  jam.pump();
}

main();
